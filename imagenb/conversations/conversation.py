"""`ig.chat`: a conversation that refines an image turn by turn; `Chat.say` continues it,
`Turn.say` branches from an earlier turn.

Order of work for every turn, as for every image: validate (nothing sent), look the turn up
in the store (its key covers its parent's key, so a re-run replays a whole conversation,
branches included, at no cost), estimate and check the budget, then run it on the engine
loop (retries as for images; a parent the service no longer has is sent again as an image,
with a one-line notice), and store image and turn before returning.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from imagenb.backends.turns import TurnCall, TurnReply
from imagenb.conversations import money, running
from imagenb.conversations.settings import ChatSettings, check_text, settings, turn_key
from imagenb.conversations.turn import Turn
from imagenb.core import config as config_mod
from imagenb.core import inputs
from imagenb.engine import loop, session
from imagenb.errors import BackendError, ImagenbError, InvalidRequest
from imagenb.store import turns as turn_store

if TYPE_CHECKING:
    import pandas as pd

STREAM_PARTIALS = 2
MAX_VARIATIONS = 8  # "a coherent set of up to eight outputs"


def chat(
    *,
    model: str | None = None,
    mainline: str | None = None,
    thinking: str | None = None,
    web_search: bool = False,
    name: str | None = None,
    **params: Any,
) -> Chat:
    """A new conversation. `mainline` drives it (default: `catalog.DEFAULT_MAINLINE`),
    `thinking` is its reasoning effort (the summary is shown), `web_search=True` lets it look
    things up (sources shown); `params` are the image tool's options."""
    return Chat(
        settings(
            model=model, mainline=mainline, thinking=thinking, web_search=web_search, **params
        ),
        name=name,
    )


class Chat:
    """One conversation: its settings and every turn made in it (branches included)."""

    def __init__(self, s: ChatSettings, *, name: str | None = None) -> None:
        self.settings = s
        self.name = name
        self.turns: list[Turn] = []
        self.last: Turn | None = None

    def say(
        self,
        text: str,
        *,
        images: Any = None,
        fresh: bool = False,
        stream: bool = False,
        variations: int | None = None,
        check_text: str | None = None,
        fixes: int = 2,
        **params: Any,
    ) -> Turn:
        """The next turn, continuing from the last one (the first turn draws from scratch).
        With `variations=k`, k candidate turns from the same parent; the first is returned and
        all k are `.variations`. With `check_text="..."`, the image's text is read back (OCR)
        and up to `fixes` more turns ask the model to correct it; `.attempts` lists them."""
        if check_text is not None:
            from imagenb.conversations.selfcheck import say_checked

            return say_checked(self, self.last, text, check_text, fixes=fixes, images=images,
                               fresh=fresh, stream=stream, **params)  # fmt: skip
        return self.say_from(
            self.last,
            text,
            images=images,
            fresh=fresh,
            stream=stream,
            variations=variations,
            **params,
        )

    def estimate(
        self, text: str, *, images: Any = None, stream: bool = False, **params: Any
    ) -> money.TurnCost:
        """What `say(text, ...)` would cost at most, sent now from the last turn (no network;
        a stored turn would be free)."""
        return self.estimate_from(self.last, text, images=images, stream=stream, **params)

    def estimate_from(
        self, parent: Turn | None, text: str, *, images: Any = None, stream: bool = False,
        **params: Any,
    ) -> money.TurnCost:  # fmt: skip
        """What a turn from `parent` would cost at most."""
        cfg = config_mod.current()
        s = self.settings.with_params(**params)
        pics = inputs.load_many(images, limit=16) if images is not None else ()
        return self._prepare(parent, check_text(text), pics, s, "", stream, cfg).estimate

    def say_from(
        self,
        parent: Turn | None,
        text: str,
        *,
        images: Any = None,
        fresh: bool = False,
        stream: bool = False,
        variations: int | None = None,
        **params: Any,
    ) -> Turn:
        """A turn whose parent is `parent` (None: a fresh start in this chat)."""
        cfg = config_mod.current()
        count = _variations(variations)
        s = self.settings.with_params(**params)
        message = check_text(text)
        pics = inputs.load_many(images, limit=16) if images is not None else ()
        origin = _origin(cfg)
        store = session.store_for(cfg)
        turns: list[Turn | None] = [None] * count
        pending: list[tuple[int, running.Pending]] = []
        for variant in range(count):
            key = turn_key(
                parent.key if parent else None, message, tuple(p.sha256 for p in pics), s, variant
            )
            found = None if fresh else turn_store.find(store, key, _origins(cfg, origin))
            if found is not None:
                turns[variant] = Turn.from_record(
                    self, found, parent, store, cached=True, thumbnail_px=cfg.thumbnail_px
                )
            else:
                pending.append((variant, self._prepare(parent, message, pics, s, key, stream, cfg)))
        failures: list[ImagenbError] = []
        if pending:
            reservation = session.reserve([p.estimate.usd for _, p in pending], cfg)
            try:
                started = time.monotonic()
                sink = running.PartialPreviewSink(cfg.thumbnail_px) if stream else None
                runs = running.run_all(cfg, [p for _, p in pending], sink.offer if sink else None)
                results = loop.wait(loop.submit(runs), tick=sink.show if sink else None)
                if sink:
                    sink.clear()
                latency = time.monotonic() - started
                for (variant, p), result in zip(pending, results, strict=True):
                    if isinstance(result, ImagenbError):
                        money.failed(reservation, p.estimate.usd, result)
                        failures.append(result)
                        continue
                    reply, notice = result
                    if notice:
                        print(notice)
                    paid_cost = self._paid_cost(p, reply, cfg)
                    turns[variant] = self._finish(p, reply, paid_cost, notice, latency, origin, cfg)
                    money.paid(reservation, p.estimate.usd, paid_cost, p.settings)
            finally:
                reservation.close()
        made = [t for t in turns if t is not None]
        if not made:
            raise failures[0]
        for failure in failures:
            print(f"imagenb: one variation failed: {failure}")
        for turn in made:
            turn.variations = made
            self.turns.append(turn)
        self.last = made[0]
        return made[0]

    def _prepare(
        self,
        parent: Turn | None,
        text: str,
        pics: tuple[inputs.ImageInput, ...],
        s: ChatSettings,
        key: str,
        stream: bool,
        cfg: config_mod.Config,
    ) -> running.Pending:
        name = session.backend_name(cfg)
        parent_image = parent.image.data if parent is not None and parent.image else None
        chained = parent.response_id if parent and parent.origin == _origin(cfg) else None
        stateless = parent_image is not None and (name == "preview" or not chained)
        partials = STREAM_PARTIALS if stream else 0
        sizes = [(p.width, p.height) for p in pics]
        if parent is not None and parent.image is not None:
            sizes.append((parent.image.width, parent.image.height))
        estimate = money.estimate(
            s, text, context=_context(parent), pictures=sizes, partials=partials
        )
        call = TurnCall(
            mainline=s.mainline,
            text=text,
            image_model=s.model,
            image_options=dict(s.options),
            thinking=s.thinking,
            web_search=s.web_search,
            force_image=parent is not None,
            previous_response_id=None if stateless else chained,
            parent_image=parent_image if stateless else None,
            input_images=tuple(p.data for p in pics),
            stream=stream,
            partial_images=partials,
        )
        return running.Pending(parent, text, s, key, call, estimate, parent_image)

    @staticmethod
    def _paid_cost(p: running.Pending, reply: TurnReply, cfg: config_mod.Config) -> money.TurnCost:
        """What the turn cost: both usages at their prices (previews: the estimate, never
        paid; an image without its tool usage: that part at its estimate, flagged)."""
        if session.backend_name(cfg) in ("preview", "replay"):
            return p.estimate
        paid_cost = money.actual(p.settings, reply.usage, reply.tool_usage)
        if reply.image is not None and not (reply.tool_usage or {}).get("image_gen"):
            return money.TurnCost(paid_cost.mainline_usd, p.estimate.image_usd, True)
        return paid_cost

    def _finish(
        self,
        p: running.Pending,
        reply: TurnReply,
        paid_cost: money.TurnCost,
        notice: str | None,
        latency: float,
        origin: str,
        cfg: config_mod.Config,
    ) -> Turn:
        name = session.backend_name(cfg)
        paid = name not in ("preview", "replay")
        status = "ok" if reply.image is not None else "blocked" if reply.blocked else "no image"
        chat_key = p.parent.chat_key if p.parent else p.key
        parent_image_key = p.parent.image.key if p.parent and p.parent.image else None
        record = turn_store.TurnRecord(
            key=p.key,
            origin=origin,
            chat=chat_key,
            parent=p.parent.key if p.parent else None,
            text=p.text,
            settings=p.settings.canonical(),
            mainline=p.settings.mainline,
            image_model=p.settings.model,
            status=status,
            backend=name,
            image_key=turn_store.image_key(p.key, origin) if reply.image is not None else None,
            response_id=reply.response_id,
            image_call_id=reply.image_call_id,
            reasoning_id=reply.reasoning_id,
            revised_prompt=reply.revised_prompt,
            reasoning=reply.reasoning,
            model_text=reply.text,
            sources=[list(s) for s in reply.sources],
            usage=reply.usage,
            tool_usage=reply.tool_usage,
            mainline_usd=paid_cost.mainline_usd,
            image_usd=paid_cost.image_usd,
            cost_is_estimate=paid_cost.is_estimate or not paid,
            error=_describe(reply.blocked),
            notice=notice,
            latency_s=latency,
        )
        image_usage = (reply.tool_usage or {}).get("image_gen")
        meta = {
            "prompt": reply.revised_prompt or p.text,
            "model": p.settings.model,
            "backend": name,
            "params": {**p.settings.options, **reply.resolved, "mainline": p.settings.mainline},
            "usage": image_usage,
            "cost_usd": paid_cost.image_usd,
            "cost_is_estimate": record.cost_is_estimate,
            "latency_s": latency,
            "request_id": reply.response_id,
            "kind": "chat",
            "input_keys": (parent_image_key,) if parent_image_key else (),
        }
        store = session.store_for(cfg)
        turn_store.save(store, record, reply.image, meta)
        return Turn.from_record(
            self, record, p.parent, store, cached=False, thumbnail_px=cfg.thumbnail_px
        )

    # --- views ------------------------------------------------------------------------------

    @property
    def frame(self) -> pd.DataFrame:
        """One row per turn: `turn`, `parent`, `text`, `revised_prompt`, `path`, `status`,
        `cost_usd`, `latency_s` (and `cached`, `response_id`)."""
        import pandas as pd

        index = {id(t): i for i, t in enumerate(self.turns)}
        rows = [
            {
                "turn": i,
                "parent": index.get(id(t.parent)) if t.parent else None,
                "text": t.prompt,
                "revised_prompt": t.revised_prompt,
                "path": t.image.path if t.image else None,
                "status": t.status,
                "cost_usd": t.cost_usd,
                "latency_s": t.latency_s,
                "cached": t.cached,
                "response_id": t.response_id,
            }
            for i, t in enumerate(self.turns)
        ]
        frame = pd.DataFrame(
            rows,
            columns=[
                "turn",
                "parent",
                "text",
                "revised_prompt",
                "path",
                "status",
                "cost_usd",
                "latency_s",
                "cached",
                "response_id",
            ],
        )
        frame["parent"] = frame["parent"].astype("Int64")
        return frame

    @property
    def cost_usd(self) -> float:
        """What this chat's turns cost when they were made (turns served from the store: 0)."""
        return sum(t.cost_usd for t in self.turns if not t.cached)

    def tree(self) -> Any:
        """The conversation as a tree, branches side by side (static HTML)."""
        from imagenb.conversations.render import TreeView

        return TreeView(self)

    def _repr_html_(self) -> str:
        from imagenb.conversations.render import tree_html

        return tree_html(self)

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"Chat({s.model} driven by {s.mainline}, thinking={s.thinking}, "
            f"{len(self.turns)} turn(s), ${self.cost_usd:.4f})"
        )


def _variations(value: int | None) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VARIATIONS:
        raise InvalidRequest(f"variations={value!r}; ask for 1 to {MAX_VARIATIONS} candidates")
    return value


def _context(parent: Turn | None) -> int:
    """Tokens of the chain the mainline re-reads: texts, answers and images of every ancestor."""
    texts: list[str] = []
    images: list[tuple[int, int]] = []
    while parent is not None:
        texts += [parent.prompt, parent.text, parent.revised_prompt or ""]
        if parent.image is not None:
            images.append((parent.image.width, parent.image.height))
        parent = parent.parent
    return money.context_tokens(texts, images)


def _origin(cfg: config_mod.Config) -> str:
    """Who makes turns under `cfg`: preview turns never stand in for a service's."""
    name = session.backend_name(cfg)
    if name in ("preview", "replay"):
        return name
    return f"{name}:{cfg.base_url or 'https://api.openai.com/v1'}"


def _origins(cfg: config_mod.Config, origin: str) -> tuple[str, ...]:
    """Where a turn may come from: its own origin; replay takes any service's, then preview's."""
    if origin != "replay":
        return (origin,)
    known = turn_store.origins(session.store_for(cfg))
    return tuple(sorted(known, key=lambda o: o == "preview"))


def _describe(error: BackendError | None) -> str | None:
    if error is None:
        return None
    from imagenb.errors import describe

    return describe(error)
