"""``python -m course.tasks build``: regenerate every bundled task under data/."""

from __future__ import annotations

import argparse

from course.tasks.registry import TASKS, write_task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course.tasks", description=__doc__)
    parser.add_argument("command", choices=["build", "list"])
    parser.add_argument("--task", choices=sorted(TASKS), action="append",
                        help="only this task (repeatable); default: all")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, spec in TASKS.items():
            print(f"{name:10s} {spec.description}  sizes={spec.sizes}")
        return
    for name in args.task or sorted(TASKS):
        for path in write_task(name):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
