"""Child process for the kill -9 test: saves generation after generation, forever.

Generation g of the state: FILES files, each at offset g, context {"gen": g}, resolved_ahead
["a<g>", "b<g>"], so one save rewrites every row and swaps two turn keys per file. It resumes
from the generation it loads; prints "ready" once it is about to write.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tailerd.edges.checkpoint_store import CheckpointStore, FileCheckpoint

FILES = 200


def generation(gen: int) -> list[FileCheckpoint]:
    return [
        FileCheckpoint(
            path=f"/logs/{i}.jsonl",
            device=7,
            inode=i,
            head_len=1024,
            head_hash="ab",
            offset=gen,
            context={"gen": gen},
            resolved_ahead=[f"a{gen}", f"b{gen}"],
        )
        for i in range(FILES)
    ]


def main() -> None:
    store = CheckpointStore(Path(sys.argv[1]))
    gen = max((c.offset for c in store.load().values()), default=0)
    print("ready", flush=True)
    while True:
        gen += 1
        store.save(generation(gen))


if __name__ == "__main__":
    main()
