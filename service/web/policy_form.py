"""The policy form of the admin console: a policy body as form fields, and posted fields back
into a PolicyBody, with every problem named by the field it belongs to."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from classifier import ATTRIBUTES
from service.core.errors import ModerationError
from service.core.settings import Settings
from service.rules.policy import DEFAULT_TRUSTED_THRESHOLD
from service.rules.policy_body import PolicyBody
from service.web.deps import Form

__all__ = [
    "BAND_FIELDS",
    "CHOICES",
    "FieldError",
    "FormInvalid",
    "PolicyFields",
    "body_of",
    "deployment_policy",
    "domain_error",
    "fields_of",
    "posted_fields",
]

# The per-attribute maps, each shown as one number field an attribute ("thresholds.toxic").
BAND_FIELDS = ("thresholds", "reject_thresholds")
# Choices of the body's enumerated and yes/no settings; "" is "inherit" in every one.
CHOICES: dict[str, tuple[str, ...]] = {
    "unsupported_language": ("hold", "approve"),
    "premoderate_all": ("true", "false"),
    "closed": ("true", "false"),
    "closed_action": ("refuse", "reject"),
}
_YES_NO = ("premoderate_all", "closed")
NUMBER_FIELDS = ("trusted_threshold",)
RULES_FIELD = "rules"


@dataclass(frozen=True)
class FieldError:
    field: str  # the body's path, dotted: "thresholds", "thresholds.toxic", "rules.links"
    message: str

    @property
    def anchor(self) -> str:
        """The id of the form control (or group of controls) the field names: a band's
        attribute has a control of its own, anything inside the rules is the rules' box."""
        parts = self.field.split(".")
        control = parts[:2] if parts[0] in BAND_FIELDS else parts[:1]
        return "f-" + "-".join(control)


class FormInvalid(Exception):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)


@dataclass
class PolicyFields:
    """What the form's controls hold, by control name, as text."""

    values: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.values.get(name, "")


def deployment_policy(settings: Settings) -> dict[str, Any]:
    """What a site inherits before it says anything: the placeholders of the site's form, and
    the first level merged under a section's and an article's."""
    return {
        "thresholds": dict(settings.thresholds),
        "unsupported_language": settings.unsupported_language,
        "trusted_threshold": DEFAULT_TRUSTED_THRESHOLD,
        "premoderate_all": False,
        "closed": False,
        "closed_action": "refuse",
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def fields_of(body: Mapping[str, Any]) -> PolicyFields:
    """A stored body as the form shows it: what the body does not name stays blank."""
    values: dict[str, str] = {}
    for band in BAND_FIELDS:
        for attribute, value in (body.get(band) or {}).items():
            values[f"{band}.{attribute}"] = _text(value)
    for name in (*CHOICES, *NUMBER_FIELDS):
        values[name] = _text(body.get(name))
    rules = body.get(RULES_FIELD)
    values[RULES_FIELD] = json.dumps(rules, indent=2, sort_keys=True) if rules else ""
    return PolicyFields(values)


def posted_fields(form: Form) -> PolicyFields:
    """The policy's controls from a posted form, trimmed; anything else is left out."""
    names = [f"{band}.{a}" for band in BAND_FIELDS for a in ATTRIBUTES]
    names += [*CHOICES, *NUMBER_FIELDS, RULES_FIELD]
    return PolicyFields({name: (form.get(name) or "").strip() for name in names})


def _number(name: str, text: str, errors: list[FieldError]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        errors.append(FieldError(name, f"{text!r} is not a number (a blank field inherits)"))
        return None
    if not math.isfinite(value):
        errors.append(FieldError(name, "must be a finite number"))
        return None
    return value


def _rules(text: str, errors: list[FieldError]) -> Any:
    try:
        rules = json.loads(text)
    except json.JSONDecodeError as exc:
        errors.append(FieldError(RULES_FIELD, f"not JSON: {exc.msg} at line {exc.lineno}"))
        return None
    if not isinstance(rules, dict):
        errors.append(FieldError(RULES_FIELD, 'must be a JSON object, e.g. {"links": {}}'))
        return None
    return rules


def _raw_body(fields: PolicyFields, errors: list[FieldError]) -> dict[str, Any]:
    """The body the fields name, parsed as far as a form must (text to numbers, JSON); what a
    value may be is PolicyBody's to say."""
    raw: dict[str, Any] = {}
    for band in BAND_FIELDS:
        values = {}
        for attribute in ATTRIBUTES:
            name = f"{band}.{attribute}"
            number = _number(name, fields.get(name), errors) if fields.get(name) else None
            if number is not None:  # blank inherits; a wrong one is in `errors` already
                values[attribute] = number
        if values:
            raw[band] = values
    for name, allowed in CHOICES.items():
        chosen = fields.get(name)
        if chosen and chosen not in allowed:
            errors.append(FieldError(name, f"is one of: {', '.join(allowed)} (or inherit)"))
        elif chosen:
            raw[name] = chosen == "true" if name in _YES_NO else chosen
    for name in NUMBER_FIELDS:
        number = _number(name, fields.get(name), errors) if fields.get(name) else None
        if number is not None:
            raw[name] = number
    rules = _rules(fields.get(RULES_FIELD), errors) if fields.get(RULES_FIELD) else None
    if rules is not None:
        raw[RULES_FIELD] = rules
    return raw


def _validation_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "policy"
        message = str(error["msg"]).removeprefix("Value error, ")
        errors.append(FieldError(where, message))
    return errors


def _band_errors(raw: Mapping[str, Any]) -> list[FieldError]:
    """Each attribute's value checked alone, by PolicyBody's own rules, so that an error
    names the one field to correct rather than the whole map."""
    errors = []
    for band in BAND_FIELDS:
        for attribute, value in (raw.get(band) or {}).items():
            try:
                PolicyBody.model_validate({band: {attribute: value}})
            except ValidationError as exc:
                for error in _validation_errors(exc):
                    errors.append(FieldError(f"{band}.{attribute}", error.message))
    return errors


def body_of(fields: PolicyFields) -> PolicyBody:
    """The PolicyBody the form's fields say, or FormInvalid naming every field that is wrong."""
    errors: list[FieldError] = []
    raw = _raw_body(fields, errors)
    bands = _band_errors(raw)
    try:
        body = PolicyBody.model_validate(raw)
    except ValidationError as exc:
        # The whole map's error repeats what its fields' errors already say, more vaguely.
        named = {e.field.split(".")[0] for e in bands}
        errors += [e for e in _validation_errors(exc) if e.field not in named]
    if errors or bands:
        raise FormInvalid(bands + errors)
    return body


def domain_error(exc: ModerationError) -> FieldError:
    """A refusal of the policy functions (a reject band below the site's hold thresholds, an
    override that is not there) as the form shows it."""
    return FieldError(exc.field or "policy", exc.detail)
