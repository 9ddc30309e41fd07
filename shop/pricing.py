"""Derived prices for catalogues whose source has none (the Myntra "Fashion Product Images" set).

The price is a pure function of the product's id and its kind, so every run, process and
machine gives the same number:

* the article type (or, failing that, the master category) picks a band of plausible INR
  prices for that family of products, e.g. T-shirts 399-1499, watches 1999-14999;
* SHA-256 of the external id picks a point in that band, on a grid of 50 rupees less one,
  so every price ends in 9 (399.00, 1299.00, 1349.00, ...).

These are not real prices and must never be shown as such outside the demo.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal

CURRENCY = "INR"
PRICE_STEP = 50  # prices are k * 50 - 1: ... 1249, 1299, 1349 ...

# family -> (lowest, highest) price in INR; both ends are on the k * 50 - 1 grid.
BANDS: dict[str, tuple[int, int]] = {
    "tshirts": (399, 1499),
    "shirts": (699, 2499),
    "dresses": (799, 3499),
    "knitwear_outerwear": (999, 3999),
    "jeans": (999, 2999),
    "bottoms": (599, 1999),
    "innerwear": (199, 799),
    "shoes": (1499, 5999),
    "sandals": (499, 2499),
    "flip_flops": (199, 999),
    "watches": (1999, 14999),
    "bags": (699, 3999),
    "wallets_belts": (399, 1999),
    "eyewear": (799, 4999),
    "jewellery": (299, 2999),
    "personal_care": (299, 1999),
    "small_accessories": (199, 999),
    "default": (499, 2999),
}

_FAMILY_MEMBERS: dict[str, tuple[str, ...]] = {
    "tshirts": ("Tshirts", "T-Shirt", "Tops", "Top", "Polo", "Longsleeve", "Tank Top", "Camisoles", "Body"),
    "shirts": ("Shirts", "Shirt", "Blouse", "Kurtas", "Kurtis", "Tunics", "Nehru Jackets"),
    "dresses": ("Dresses", "Dress", "Kurta Sets", "Sarees", "Salwar", "Jumpsuit", "Lehenga Choli", "Salwar and Dupatta"),
    "knitwear_outerwear": (
        "Sweaters", "Sweatshirts", "Hoodie", "Jackets", "Outwear", "Blazers", "Blazer", "Waistcoat", "Shrug",
        "Rain Jacket", "Tracksuits", "Suits",
    ),
    "jeans": ("Jeans", "Trousers", "Pants", "Jeggings"),
    "bottoms": (
        "Shorts", "Track Pants", "Capris", "Leggings", "Skirts", "Skirt", "Churidar", "Patiala",
        "Lounge Pants", "Lounge Shorts", "Lounge Tshirts", "Night suits", "Nightdress", "Robe", "Baby Dolls",
    ),
    "innerwear": (
        "Briefs", "Boxers", "Bra", "Trunk", "Innerwear Vests", "Undershirt", "Socks", "Stockings", "Tights",
        "Shapewear",
    ),
    "shoes": ("Casual Shoes", "Formal Shoes", "Sports Shoes", "Heels", "Shoes", "Booties"),
    "sandals": ("Sandals", "Sports Sandals", "Flats"),
    "flip_flops": ("Flip Flops", "Shoe Accessories", "Shoe Laces"),
    "watches": ("Watches",),
    "bags": (
        "Handbags", "Backpacks", "Clutches", "Duffel Bag", "Laptop Bag", "Messenger Bag", "Rucksacks",
        "Trolley Bag", "Tablet Sleeve", "Mobile Pouch", "Waist Pouch",
    ),
    "wallets_belts": ("Wallets", "Belts", "Accessory Gift Set", "Travel Accessory"),
    "eyewear": ("Sunglasses",),
    "jewellery": (
        "Bracelet", "Necklace and Chains", "Earrings", "Ring", "Pendant", "Bangle", "Jewellery Set", "Cufflinks",
    ),
    "personal_care": (
        "Perfume and Body Mist", "Deodorant", "Fragrance Gift Set", "Lipstick", "Nail Polish", "Face Moisturisers",
    ),
    "small_accessories": (
        "Caps", "Hat", "Headband", "Gloves", "Ties", "Mufflers", "Scarves", "Stoles", "Umbrellas", "Dupatta",
        "Free Gifts", "Key chain", "Water Bottle", "Wristbands",
    ),
}

# Used when the article type is unknown.
_MASTER_CATEGORY_FAMILY = {
    "footwear": "shoes",
    "personal care": "personal_care",
    "free items": "small_accessories",
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _singular(key: str) -> str:
    return key[:-1] if key.endswith("s") and len(key) > 3 else key


# 'T-Shirt', 'Tshirts' and 'tshirt' all find the same family.
_FAMILY_BY_ARTICLE: dict[str, str] = {}
for _family, _members in _FAMILY_MEMBERS.items():
    for _member in _members:
        _FAMILY_BY_ARTICLE.setdefault(_key(_member), _family)
        _FAMILY_BY_ARTICLE.setdefault(_singular(_key(_member)), _family)


def price_family(*, article_type: str, master_category: str = "") -> str:
    key = _key(article_type or "")
    family = _FAMILY_BY_ARTICLE.get(key) or _FAMILY_BY_ARTICLE.get(_singular(key))
    if family is None:
        family = _MASTER_CATEGORY_FAMILY.get((master_category or "").strip().lower(), "default")
    return family


def derived_price(*, external_id: str, article_type: str, master_category: str) -> Decimal:
    """A stable, plausible INR price ending in 9 for a product whose source has no price."""
    low, high = BANDS[price_family(article_type=article_type, master_category=master_category)]
    first, last = (low + 1) // PRICE_STEP, (high + 1) // PRICE_STEP
    digest = hashlib.sha256(f"vitrine-price:{external_id}".encode()).digest()
    k = first + int.from_bytes(digest[:8], "big") % (last - first + 1)
    return Decimal(k * PRICE_STEP - 1).quantize(Decimal("0.01"))
