"""The I/O shell: files, inotify, state on disk, systemd. Everything that touches the OS."""
