"""Storefront template helpers: ``{% load shop_tags %}``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.conf import settings

register = template.Library()

CURRENCY_SYMBOLS = {"INR": "₹", "USD": "$", "EUR": "€", "GBP": "£"}

# Shown first, in this order, on the product page; other attributes follow alphabetically.
ATTRIBUTE_ORDER = ["season", "usage", "year"]


def _group(digits: str, *, indian: bool) -> str:
    """Thousands separators; Indian grouping (lakh, crore) puts commas every two digits after the first three."""
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    size = 2 if indian else 3
    groups = []
    while head:
        groups.insert(0, head[-size:])
        head = head[:-size]
    return ",".join([*groups, tail])


@register.filter
def money(value, currency: str | None = None) -> str:
    """``{{ product.price|money:product.currency }}`` -> "₹1,299" (or "₹1,299.50"; INR grouped as ₹1,29,900)."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return ""
    code = (currency or settings.DEFAULT_CURRENCY or "").upper()
    sign = "-" if amount < 0 else ""
    whole, _, cents = f"{abs(amount):.2f}".partition(".")
    number = _group(whole, indian=code == "INR") + ("" if cents == "00" else f".{cents}")
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{code} {number}".strip()


@register.filter
def attribute_items(attributes) -> list[tuple[str, str]]:
    """(label, value) pairs of a product's scalar attributes, known ones first, empties left out."""
    if not isinstance(attributes, dict):
        return []
    keys = [k for k in ATTRIBUTE_ORDER if k in attributes]
    keys += sorted(k for k in attributes if k not in ATTRIBUTE_ORDER)
    return [
        (key.replace("_", " ").capitalize(), str(attributes[key]))
        for key in keys
        if isinstance(attributes[key], (str, int, float)) and not isinstance(attributes[key], bool)
        and str(attributes[key]).strip()
    ]
