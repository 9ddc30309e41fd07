from decimal import Decimal

import pytest

from shop.pricing import BANDS, derived_price, price_family


def test_price_is_deterministic_and_independent_of_the_process():
    a = derived_price(external_id="15970", article_type="Shirts", master_category="Apparel")
    b = derived_price(external_id="15970", article_type="Shirts", master_category="Apparel")
    assert a == b
    # sha256-based, so the value is fixed across processes and machines (unlike hash()).
    assert a == Decimal("1849.00")
    assert a.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "article_type, master_category, family",
    [
        ("Tshirts", "Apparel", "tshirts"),
        ("T-Shirt", "", "tshirts"),
        ("Shirts", "Apparel", "shirts"),
        ("Jeans", "Apparel", "jeans"),
        ("Casual Shoes", "Footwear", "shoes"),
        ("Watches", "Accessories", "watches"),
        ("Handbags", "Accessories", "bags"),
        ("Necklace and Chains", "Accessories", "jewellery"),
        ("Perfume and Body Mist", "Personal Care", "personal_care"),
        ("Something New", "Footwear", "shoes"),
        ("Something New", "Personal Care", "personal_care"),
        ("Footballs", "Sporting Goods", "default"),
    ],
)
def test_prices_fall_in_the_family_band_and_end_in_9(article_type, master_category, family):
    assert price_family(article_type=article_type, master_category=master_category) == family
    low, high = BANDS[family]
    prices = {
        derived_price(external_id=str(10000 + i), article_type=article_type, master_category=master_category)
        for i in range(300)
    }
    assert all(Decimal(low) <= p <= Decimal(high) for p in prices)
    assert all(p % 10 == 9 and p == p.to_integral_value() for p in prices)
    assert len(prices) > 5  # spread over the band, not one value


def test_bands_are_on_the_grid():
    for low, high in BANDS.values():
        assert low < high
        assert (low + 1) % 50 == 0 and (high + 1) % 50 == 0


def test_prices_differ_across_ids():
    prices = [derived_price(external_id=str(i), article_type="Watches", master_category="Accessories") for i in range(50)]
    assert len(set(prices)) > 20
    assert min(prices) < Decimal("6000") < max(prices)
