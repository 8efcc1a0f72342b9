"""tailerd's host-scale benchmark: `python -m bench` (see bench/README.md). Not part of CI."""
