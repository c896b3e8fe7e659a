"""`flowlord pause | resume | controls`: the workflow switches (DESIGN §5), for people and
scripts, beside a running `flowlord run` (its leader sees a change within a second).

A workflow is named by its file key, as `flowlord phases` shows it; a name the database does
not know is refused (exit 2) and nothing is written.
"""

from __future__ import annotations

import argparse

from flowlord import controls
from flowlord.config import RunConfig
from flowlord.table import format_table
from flowlord.task_commands import actor, opened, plain, print_json
from workflow.controls import ControlEvent, describe


def pause(args: argparse.Namespace, config: RunConfig) -> int:
    with controls.known_phases(config.db) as phases_of, opened(config) as store:
        event = controls.pause(store, phases_of, args.workflow, args.phase or "",
                               reason=args.reason, actor=actor(args))  # fmt: skip
    _done(args, event, f"paused {describe(event.workflow, event.phase)}: {event.reason}")
    return 0


def resume(args: argparse.Namespace, config: RunConfig) -> int:
    with controls.known_phases(config.db) as phases_of, opened(config) as store:
        event = controls.resume(store, phases_of, args.workflow, args.phase or "",
                                actor=actor(args), discard_held=args.discard_held)  # fmt: skip
    what = (f"{event.discarded} held task(s) discarded" if args.discard_held
            else f"{event.released} held task(s) released")  # fmt: skip
    _done(args, event, f"resumed {describe(event.workflow, event.phase)}: {what}")
    return 0


def listing(args: argparse.Namespace, config: RunConfig) -> int:
    """Every switch ever set (paused first), with the records each pause holds, and the
    latest changes."""
    with opened(config) as store:
        shown = controls.overview(store)
    if args.json:
        print_json({
            "controls": [{**plain(s.control), "held": s.held} for s in shown.switches],
            "events": [plain(e) for e in shown.events],
        })  # fmt: skip
        return 0
    table = [_switch_row(s) for s in shown.switches]
    print(format_table(("workflow", "phase", "state", "held", "since", "by", "reason"), table)
          if table else "no workflow has been paused")  # fmt: skip
    if shown.events:
        print()
        print(format_table(("seq", "at", "target", "change", "by", "reason"),
                           [_event_row(e) for e in shown.events]))  # fmt: skip
    return 0


def _switch_row(switch: controls.Switch) -> tuple[object, ...]:
    c = switch.control
    return (c.workflow, c.phase or "(all)", "running" if c.enabled else "PAUSED", switch.held,
            c.updated_at.isoformat(timespec="seconds"), c.updated_by, c.reason)  # fmt: skip


def _event_row(event: ControlEvent) -> tuple[object, ...]:
    if event.to_enabled:
        change = f"resumed ({event.released} released, {event.discarded} discarded)"
    else:
        change = "paused"
    return (event.seq, event.at.isoformat(timespec="seconds"),
            describe(event.workflow, event.phase), change, event.actor, event.reason)  # fmt: skip


def _done(args: argparse.Namespace, event: ControlEvent, line: str) -> None:
    if args.json:
        print_json(plain(event))
    else:
        print(line)
