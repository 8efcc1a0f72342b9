"""The pure core: bytes, values and `now` in; values out. No files, clocks, logging or network."""
