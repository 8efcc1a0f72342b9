"""`python -m tailerd.formats.native`: regenerate tailerd/schema/native.schema.json."""

from __future__ import annotations

from tailerd.formats.native.schema import write_schema

if __name__ == "__main__":
    write_schema()
