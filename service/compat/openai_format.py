"""OpenAI's moderation wire format: its request and response, and our attributes mapped onto it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from classifier.attributes import Attribute
from service.comments.inline import Judged
from service.compat.errors import OpenAIError
from service.core.tables import new_id
from service.rules.policy import Verdict
from service.rules.reasons import Reason

__all__ = [
    "CATEGORIES",
    "CATEGORIES_OF",
    "DEFAULT_MODEL",
    "MAX_INPUTS",
    "Category",
    "ModerationIn",
    "ModerationOut",
    "OpenAIErrorOut",
    "categories_of",
    "category_scores",
    "moderation_response",
    "moderation_result",
    "texts_of",
]

# OpenAI's full category set (omni-moderation); its SDK's types require every one of them.
Category = Literal[
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)

# The one table: which of OpenAI's categories each of our attributes speaks for. A category
# several attributes map to scores the highest of theirs. Every attribute maps somewhere, so a
# text held for any attribute alone also sets a category.
# - toxic, severe_toxic: OpenAI has no "toxicity"; its harassment ("harassing language towards
#   any target") is what rude, abusive comments are. Neither implies a protected group (hate)
#   or sexual content.
# - obscene: Jigsaw's obscene is profanity ("crap", "shit"), not content "meant to arouse
#   sexual excitement": reporting it as sexual would trip clients that route sexual content
#   elsewhere (age gates); in comments it is abuse, so harassment.
# - threat: a threat is harassment that "includes violence or serious harm" and depicts
#   violence, so harassment (a subcategory never outscores its parent), harassment/threatening
#   and violence.
# - identity_hate: hate, OpenAI's name for hate based on a protected attribute.
# Not modelled, so 0.0 and false: hate/threatening (it needs hate and a threat at once, which
# one attribute's score does not say), illicit, illicit/violent, the self-harm and sexual
# categories, violence/graphic.
CATEGORIES_OF: Mapping[Attribute, tuple[Category, ...]] = MappingProxyType(
    {
        "toxic": ("harassment",),
        "severe_toxic": ("harassment",),
        "obscene": ("harassment",),
        "threat": ("harassment", "harassment/threatening", "violence"),
        "insult": ("harassment",),
        "identity_hate": ("hate",),
    }
)
DEFAULT_MODEL = "omni-moderation-latest"
MAX_INPUTS = 100

# Validated by `texts_of`, so that every problem names `input` in OpenAI's error format;
# the schema still tells clients what is accepted.
_InputField = Annotated[
    object,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": MAX_INPUTS,
                },
            ]
        }
    ),
]


class ModerationIn(BaseModel):
    """OpenAI's request body; fields it may add later are ignored, as OpenAI's clients expect."""

    model_config = ConfigDict(extra="ignore")

    input: _InputField = Field(default=None, description="A text, or up to 100 texts.")
    model: str | None = Field(default=None, description="Any name; echoed in the answer.")


class ModerationResultOut(BaseModel):
    flagged: bool
    categories: dict[Category, bool]
    category_scores: dict[Category, float]
    category_applied_input_types: dict[Category, list[Literal["text"]]]


class ModerationOut(BaseModel):
    id: str
    model: str
    results: list[ModerationResultOut]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorOut(BaseModel):
    """Every failure of the route, in OpenAI's shape (its clients parse it)."""

    error: OpenAIErrorDetail


def _kind(value: object) -> str:
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        dict: "an object",
        list: "an array",
    }
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def texts_of(raw: object, *, max_inputs: int = MAX_INPUTS, max_chars: int) -> list[str]:
    """The texts of `input` (one string or a list of them), or an OpenAIError naming `input`."""
    if raw is None:
        raise OpenAIError("Missing required parameter: 'input'.", param="input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list):
        raise OpenAIError(
            f"Invalid type for 'input': expected a string or an array of strings, "
            f"but got {_kind(raw)} instead.",
            param="input",
        )
    if not texts:
        raise OpenAIError("'input' is an empty array; send at least one string.", param="input")
    if len(texts) > max_inputs:
        raise OpenAIError(
            f"'input' has {len(texts)} items; the limit is {max_inputs}.", param="input"
        )
    for index, text in enumerate(texts):
        where = "'input'" if isinstance(raw, str) else f"'input[{index}]'"
        if not isinstance(text, str):
            raise OpenAIError(
                f"Invalid type for {where}: expected a string, but got {_kind(text)} instead. "
                "Image and multi-modal inputs are not supported.",
                param="input",
            )
        if "\x00" in text:
            raise OpenAIError(f"{where} contains a NUL character.", param="input")
        if len(text) > max_chars:
            raise OpenAIError(
                f"{where} is {len(text)} characters; the limit is {max_chars}.", param="input"
            )
    return texts


def category_scores(scores: Mapping[str, float]) -> dict[Category, float]:
    """Each category's score: the highest of its attributes' probabilities, else 0.0."""
    out: dict[Category, float] = dict.fromkeys(CATEGORIES, 0.0)
    for attribute, mapped in CATEGORIES_OF.items():
        if attribute in scores:
            for category in mapped:
                out[category] = max(out[category], float(scores[attribute]))
    return out


def categories_of(attributes: Iterable[str]) -> dict[Category, bool]:
    """Each category's boolean: true when an attribute mapped to it reached its threshold."""
    crossed = set(attributes)
    out: dict[Category, bool] = dict.fromkeys(CATEGORIES, False)
    for attribute, mapped in CATEGORIES_OF.items():
        if attribute in crossed:
            out.update(dict.fromkeys(mapped, True))
    return out


def _crossed(verdict: Verdict) -> list[str]:
    # The policy names every attribute at or over its threshold (the site's own thresholds,
    # a trusted author's higher ones), so no second threshold lookup can disagree with it.
    return [
        str(reason["attribute"])
        for reason in verdict.reasons
        if reason.get("code") == Reason.ATTRIBUTE_OVER_THRESHOLD and reason.get("attribute")
    ]


def moderation_result(judged: Judged) -> dict[str, Any]:
    """One text's result. An unscored text (another language, a model error) scores 0.0
    everywhere, and is flagged exactly when the site's policy holds it."""
    categories = categories_of(_crossed(judged.verdict))
    return {
        "flagged": judged.verdict.action != "approve" or any(categories.values()),
        "categories": categories,
        "category_scores": category_scores(judged.scores),
        "category_applied_input_types": {category: ["text"] for category in CATEGORIES},
    }


def moderation_response(judged: Sequence[Judged], *, model: str) -> dict[str, Any]:
    """OpenAI's answer: one result per input, in the order of the inputs."""
    return {
        "id": f"modr-{new_id()}",
        "model": model,
        "results": [moderation_result(one) for one in judged],
    }
