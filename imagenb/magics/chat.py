"""`%%imagechat`: the cell body is the next message of conversation NAME.

`%%imagechat -c poster -s 16:9 -q low` starts (or continues) the chat `poster`, which is also
put in the notebook's namespace as a `Chat`; `--from N` branches from turn N of it;
`--thinking high` and `--web` set the mainline's reasoning effort and web search from this
turn on. `{name}` in the body is filled from the notebook's variables. A user error prints one
line, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from IPython.core.error import UsageError

from imagenb.conversations.conversation import Chat
from imagenb.conversations.settings import settings
from imagenb.errors import ImagenbError
from imagenb.magics import args as magic_args

_CHATS: dict[str, Chat] = {}
_OPTIONS = ("size", "quality", "output_format", "background", "moderation")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%imagechat", add_help=False, exit_on_error=False)
    add = parser.add_argument
    add("-c", "--chat", default="chat", help="the conversation's name (also a variable)")
    add("--from", dest="parent", type=int, help="branch from turn N of the chat (0 = first)")
    add("--thinking", help="reasoning effort of the mainline: low, medium, high, ...")
    add("--web", action="store_true", help="let the mainline search the web (sources shown)")
    add("--mainline", help="the Responses model that drives the chat")
    add("-m", "--model", help="the image model (the image tool's model)")
    add("-s", "--size", help="WxH, a preset or a ratio such as 16:9")
    add("-q", "--quality", help="low, medium, high or auto")
    add("-f", "--format", dest="output_format", help="png, webp or jpeg")
    add("--background", help="auto, opaque or transparent")
    add("--moderation", help="auto or low")
    add("-o", "--out", help="also store the Turn in this variable")
    add("--fresh", action="store_true", help="make the turn again even if it is stored")
    add("--stream", action="store_true", help="stream the turn (partial images)")
    add("--estimate", action="store_true", help="print what the turn would cost; send nothing")
    return parser


PARSER = _parser()


def imagechat(line: str, cell: str) -> Any:
    """`%%imagechat [-c NAME] [--from TURN] [--thinking LEVEL] [--web] [image options]`: the
    cell body is the next message in conversation NAME."""
    from IPython import get_ipython

    shell = get_ipython()
    namespace: dict[str, Any] = shell.user_ns if shell is not None else {}
    try:
        try:
            args, unknown = PARSER.parse_known_args(magic_args.split(line))
        except (argparse.ArgumentError, SystemExit) as exc:
            raise UsageError(f"%%imagechat: {exc}; see %%imagechat?") from None
        if unknown:
            raise UsageError(
                f"%%imagechat: unknown option(s) {' '.join(unknown)}; see %%imagechat?"
            )
        text, unfilled = magic_args.interpolate(cell, namespace)
        if unfilled:
            raise magic_args.unfilled_error(unfilled)  # sends nothing
        return _say(args, text, namespace)
    except ImagenbError as exc:
        print(f"imagenb: {exc}", file=sys.stderr)
        return None


def _say(args: Any, text: str, namespace: dict[str, Any]) -> Any:
    options = {k: getattr(args, k) for k in _OPTIONS if getattr(args, k) is not None}
    wanted = settings(model=args.model, mainline=args.mainline, thinking=args.thinking,
                      web_search=args.web, **options)  # fmt: skip
    chat = _CHATS.get(args.chat)
    if chat is None:
        chat = _CHATS[args.chat] = Chat(wanted, name=args.chat)
    else:
        chat.settings = wanted
    if args.chat.isidentifier():
        namespace[args.chat] = chat
    parent = chat.last
    if args.parent is not None:
        if not 0 <= args.parent < len(chat.turns):
            raise ImagenbError(
                f"--from {args.parent}: chat {args.chat!r} has turns 0 to {len(chat.turns) - 1}"
            )
        parent = chat.turns[args.parent]
    if args.estimate:
        estimate = chat.estimate_from(parent, text, stream=args.stream)
        print(f"next turn of {args.chat!r}: {estimate} at most")
        return None
    turn = chat.say_from(parent, text, fresh=args.fresh, stream=args.stream)
    if args.out:
        namespace[args.out] = turn
    return turn


def forget_chats() -> None:
    """Drop every named chat (tests; a fresh notebook)."""
    _CHATS.clear()


imagechat.__doc__ = f"{imagechat.__doc__}\n\n{PARSER.format_help()}"
