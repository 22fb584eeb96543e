"""Every model fact imagenb relies on, in one table with its sources and the date it was checked.

Validation, estimates, the panel's dropdowns and the docs all read this table; a new model is a
row here, not a code change elsewhere. Prices are USD per 1M tokens, standard (non-batch) tier.

Sources (see shared reference, openai-images-api.md, for the full citations):
  SDK  openai-python 3.51.0 `types/image_model.py`, `types/image_generate_params.py`,
       `types/image_edit_params.py` (model ids, parameter values, edit limits).
  IG   developers.openai.com image-generation guide (size rule, qualities, per-image costs).
  MP2  developers.openai.com/api/docs/models/gpt-image-2 (prices, batch support).
  MP26 developers.openai.com/api/docs/models/gpt-image-2.6-sunburst (prices, `complexity`).
  MPM  developers.openai.com/api/docs/models/gpt-image-1-mini (prices).
  INF  inferred from the guide's per-image cost table (gpt-image-1.5 image out $32/1M:
       $0.133 / 4,160 tokens) or, where no page states it, from the family's rates.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagenb.errors import InvalidRequest

CHECKED = "2026-11-24"

STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")
BASE_QUALITIES = ("low", "medium", "high", "auto")
FORMATS = ("png", "webp", "jpeg")


@dataclass(frozen=True)
class Prices:
    """USD per 1M tokens of each kind."""

    text_in: float
    text_in_cached: float
    image_in: float
    image_in_cached: float
    image_out: float
    text_out: float


@dataclass(frozen=True)
class ModelSpec:
    """What one model accepts and what it costs.

    `size_rule` is "flexible" (any WxH under the gpt-image-2 rule) or "standard" (the three
    fixed sizes). `token_method` names how output tokens are estimated: "gpt-image-2" (the
    published calculator's formula) or "table" (the documented three-size token table).
    """

    name: str
    prices: Prices
    sources: tuple[str, ...]
    size_rule: str = "flexible"
    qualities: tuple[str, ...] = BASE_QUALITIES
    formats: tuple[str, ...] = FORMATS
    n_max: int = 10
    transparent: bool = True
    max_input_images: int = 16
    input_fidelity: tuple[str, ...] = ()
    complexity: bool = False
    default_long_edge: int = 1536
    token_method: str = "gpt-image-2"
    snapshot_of: str | None = None
    notes: str = ""

    @property
    def standard_sizes(self) -> tuple[str, ...]:
        return STANDARD_SIZES


@dataclass(frozen=True)
class Retired:
    name: str
    retired_on: str
    use_instead: str


_GPT2_PRICES = Prices(5.00, 1.25, 8.00, 2.00, 30.00, 10.00)
_GPT15_PRICES = Prices(5.00, 1.25, 8.00, 2.00, 32.00, 10.00)
_MINI_PRICES = Prices(2.00, 0.20, 2.50, 0.25, 8.00, 8.00)
_XQUALITIES = (*BASE_QUALITIES[:3], "xhigh", "max", "auto")


def _gpt25(name: str, snapshot_of: str | None = None) -> ModelSpec:
    return ModelSpec(
        name,
        _GPT2_PRICES,
        ("SDK", "IG", "IG-cost: both 2.5 models use the same token rates"),
        qualities=_XQUALITIES,
        snapshot_of=snapshot_of,
        notes="Output tokens for 2.5 have no published formula; estimates use gpt-image-2's.",
    )


def _gpt26(name: str) -> ModelSpec:
    return ModelSpec(
        name,
        _GPT2_PRICES,
        ("SDK", "MP26"),
        size_rule="standard",
        complexity=True,
        notes="The SDK's list of arbitrary-size models does not include 2.6: standard sizes.",
    )


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "gpt-image-2",
            _GPT2_PRICES,
            ("SDK", "IG", "MP2", "text out $10/1M: third parties only"),
            notes="Transparent background is in preview on gpt-image-2.",
        ),
        ModelSpec(
            "gpt-image-2-2026-04-21",
            _GPT2_PRICES,
            ("SDK", "MP2"),
            snapshot_of="gpt-image-2",
        ),
        _gpt25("gpt-image-2.5-sunburst"),
        _gpt25("gpt-image-2.5-sunburst-2026-09-08", "gpt-image-2.5-sunburst"),
        _gpt25("gpt-image-2.5-flare"),
        _gpt25("gpt-image-2.5-flare-2026-09-08", "gpt-image-2.5-flare"),
        _gpt26("gpt-image-2.6-sunburst"),
        _gpt26("gpt-image-2.6-flare"),
        ModelSpec(
            "gpt-image-1.5",
            _GPT15_PRICES,
            ("SDK", "IG", "INF: image out $32/1M from $0.133 per 4,160 tokens"),
            size_rule="standard",
            input_fidelity=("high", "low"),
            token_method="table",
        ),
        ModelSpec(
            "gpt-image-1-mini",
            _MINI_PRICES,
            ("SDK", "IG", "MPM"),
            size_rule="standard",
            input_fidelity=("low",),
            token_method="table",
        ),
        ModelSpec(
            "chatgpt-image-latest",
            _GPT15_PRICES,
            ("SDK", "INF: priced like gpt-image-1.5"),
            size_rule="standard",
            input_fidelity=("high", "low"),
            token_method="table",
        ),
    )
}

DEFAULT_MODEL = "gpt-image-2"

RETIRED: dict[str, Retired] = {
    r.name: r
    for r in (
        Retired("gpt-image-1", "2026-10-23", "gpt-image-2"),
        Retired("dall-e-3", "2026-05-12", "gpt-image-2"),
        Retired("dall-e-2", "2026-05-12", "gpt-image-2"),
    )
}


def lookup(name: str) -> ModelSpec:
    """The spec of `name`, or `InvalidRequest` naming the models that exist."""
    if name in MODELS:
        return MODELS[name]
    if name in RETIRED:
        r = RETIRED[name]
        raise InvalidRequest(
            f"model {name!r} was retired on {r.retired_on}; use model={r.use_instead!r} instead"
        )
    raise InvalidRequest(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")


# --- mainline (Responses API) models: they judge images and drive conversations -------------
# One row per model, read by the judge feature (imagenb.judging) and by conversations
# (imagenb.conversations). An image model is not a valid mainline (the tools guide: "aren't
# valid values for the `model` field in the Responses API"): it is the `image_generation`
# tool's model.
# Sources (shared reference openai-mainline-pricing-and-image-evals.md, checked 2026-11-18):
#   ML6L  developers.openai.com/api/docs/models/gpt-6-luna ($0.10 / $0.01 / $0.50, effort
#         none..max)
#   ML56  developers.openai.com/api/docs/models/gpt-5.6-luna and -terra (prices after 30 Jul 2026)
#   ML62  developers.openai.com/api/docs/models/gpt-6.2-sol ($2 / $0.10 / $10; rejects `none`)
#   IMGT  image input at detail="high": fit in 2048x2048, at most 2,500 32-px patches, billed
#         1.2 tokens a patch (community measurements: 1024x1024 -> 1,229, 1920x1080 -> 2,448)
#   OFF   developers.openai.com models page (gpt-6.1-terra)
#   DEP   developers.openai.com/api/docs/deprecations (shutdown dates and replacements)
#   GP    pydantic/genai-prices openai.yml [secondary]


@dataclass(frozen=True)
class MainlineSpec:
    """A text model reached through the Responses API: USD per 1M tokens (standard tier,
    context under 272K), the reasoning efforts it accepts (lowest first), how it counts an
    input image sent at `detail="high"`, and when it shuts down (ISO date, with the model to
    use instead and the source that says so)."""

    name: str
    text_in: float
    text_in_cached: float
    text_out: float
    efforts: tuple[str, ...]
    sources: tuple[str, ...]
    image_patch_budget: int = 2500
    image_token_factor: float = 1.2
    shutdown: str | None = None
    use_instead: str | None = None
    shutdown_source: str = ""
    notes: str = ""


_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_LOW_UP = _EFFORTS[2:6]  # low .. xhigh

MAINLINE_MODELS: dict[str, MainlineSpec] = {
    m.name: m
    for m in (
        MainlineSpec("gpt-6-luna", 0.10, 0.01, 0.50, _EFFORTS, ("ML6L", "IMGT")),
        MainlineSpec("gpt-5.6-luna", 0.20, 0.02, 1.20, _EFFORTS, ("ML56", "IMGT")),
        MainlineSpec("gpt-5.6-terra", 2.00, 0.20, 12.00, _EFFORTS, ("ML56", "IMGT")),
        MainlineSpec("gpt-6.2-sol", 2.00, 0.10, 10.00, _EFFORTS[2:], ("ML62", "IMGT"),
                     notes="rejects reasoning.effort='none'; cache writes $2.50/1M"),
        MainlineSpec("gpt-6.1-sol", 2.00, 0.10, 10.00, _LOW_UP, ("GP: release notes",)),
        MainlineSpec("gpt-6.1-terra", 1.00, 1.00, 5.00, _EFFORTS, ("OFF",),
                     notes="cached price not published: billed as uncached (errs high)"),
        MainlineSpec("gpt-5.6-sol", 5.00, 0.50, 30.00, _LOW_UP, ("GP",),
                     notes="launch price; a $4/$20 promotion ran to at least 2026-11-21"),
        MainlineSpec("gpt-5.5", 5.00, 0.50, 30.00, _LOW_UP, ("GP",)),
        MainlineSpec("gpt-5.4", 2.50, 0.25, 15.00, _LOW_UP, ("GP",)),
        MainlineSpec("gpt-5.4-mini", 0.75, 0.075, 4.50, _LOW_UP, ("GP",)),
        MainlineSpec("gpt-5.1", 1.25, 0.125, 10.00, _LOW_UP, ("GP",), shutdown="2027-04-01",
                     use_instead="gpt-6.2-sol", shutdown_source="dev.to/aidriftline [secondary]"),
        MainlineSpec("gpt-5", 1.25, 0.125, 10.00, _EFFORTS[1:5], ("GP",), shutdown="2026-12-11",
                     use_instead="gpt-6.1-sol", shutdown_source="DEP"),
        MainlineSpec("gpt-5-mini", 0.25, 0.025, 2.00, _EFFORTS[1:5], ("DEP",),
                     shutdown="2026-12-11", use_instead="gpt-6.1-terra", shutdown_source="DEP"),
        MainlineSpec("o3", 2.00, 0.50, 8.00, _EFFORTS[2:5], ("GP",), shutdown="2026-12-11",
                     use_instead="gpt-6.2-sol", shutdown_source="DEP"),
        MainlineSpec("gpt-4.1", 2.00, 0.50, 8.00, (), ("GP",), shutdown="2027-01-14",
                     use_instead="gpt-6-luna", shutdown_source="DEP (W3C mirror)"),
        MainlineSpec("gpt-4.1-nano", 0.10, 0.025, 0.40, (), ("GP",), shutdown="2026-10-23",
                     use_instead="gpt-5.6-luna",
                     shutdown_source="DEP; dev.to/leighefford [secondary]"),
        MainlineSpec("o4-mini", 1.10, 0.275, 4.40, _EFFORTS[2:5], ("GP",), shutdown="2026-10-23",
                     use_instead="gpt-6-luna",
                     shutdown_source="DEP; dev.to/leighefford [secondary]"),
    )
}  # fmt: skip

DEFAULT_JUDGE_MODEL = "gpt-6-luna"  # the cheapest current vision model (reference §1 (b))
# gpt-6.2-sol drives conversations: OpenAI's "go-to model for everyday work", no shutdown
# announced, and at $2/$0.10/$10 no dearer than gpt-5.6-terra; in a refinement chat the image
# tokens dominate the bill, so a capable planner costs little extra. Its lowest effort is `low`.
DEFAULT_MAINLINE = "gpt-6.2-sol"


def lookup_mainline(name: str, *, today: str | None = None) -> MainlineSpec:
    """The spec of Responses model `name`, or `InvalidRequest`: an image model, a model with
    no prices here, or one past its shutdown date (named with its replacement)."""
    if name in MODELS or name in RETIRED:
        raise InvalidRequest(
            f"{name!r} is an image model: it draws through the image tool (chat(model=...)); "
            f"a mainline drives the Responses API, e.g. {DEFAULT_MAINLINE!r}"
        )
    spec = MAINLINE_MODELS.get(name)
    if spec is None:
        raise InvalidRequest(
            f"no prices for judge model or chat mainline {name!r}; choose one of: "
            f"{', '.join(MAINLINE_MODELS)}"
        )
    import datetime

    day = today or datetime.datetime.now(datetime.UTC).date().isoformat()
    if spec.shutdown is not None and day >= spec.shutdown:
        raise InvalidRequest(
            f"{name!r} was shut down on {spec.shutdown} ({spec.shutdown_source}); "
            f"use {spec.use_instead!r} instead"
        )
    return spec
