"""Run by test_checkpoint in fresh processes: save a run's state to a file, or resume it.

``python checkpoint_script.py save STATE K``: the first K batches, then the
state, saved as JSON; ``resume STATE``: the rest of the run from it;
``whole``: the uninterrupted run. Each prints its batches as JSON lines.
"""

from __future__ import annotations

import json
import sys
import time

import snake


def slow_square(x: int) -> int:
    time.sleep(0.002 * (x % 3))  # jobs of uneven length: some in flight at the save
    return x * x


def pipeline() -> snake.Pipeline[list[int]]:
    return (
        snake.from_iterable(range(300))
        .shuffle(50, seed=2)
        .par_map(slow_square, concurrency=2)
        .filter(lambda x: x % 5 != 0)
        .batch(7)
        .enumerate()
    )


def main() -> None:
    command = sys.argv[1]
    if command == "whole":
        batches = list(pipeline().iterate(epoch=0))
    elif command == "save":
        it = pipeline().iterate(epoch=0)
        batches = [next(it) for _ in range(int(sys.argv[3]))]
        with open(sys.argv[2], "w") as file:
            json.dump(it.state_dict(), file)
        it.close()
    else:
        with open(sys.argv[2]) as file:
            batches = list(pipeline().iterate(state=json.load(file)))
    for batch in batches:
        print(json.dumps(batch))


if __name__ == "__main__":
    main()
