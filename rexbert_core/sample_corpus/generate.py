"""Document generators: one shopping listing, review or general-prose document per call, drawn with a
`random.Random` so the same seed gives the same text. See `sample_corpus` for what each looks like."""

from __future__ import annotations

import random
import re

from .vocabulary import (
    ADJECTIVES,
    ASPECTS,
    AUDIENCES,
    BRANDS,
    BULLET_TEMPLATES,
    CARE,
    CATEGORIES,
    COLOURS,
    DESCRIPTION_SENTENCES,
    FIRST_NAMES,
    GENERAL_TOPICS,
    RELATIVES,
    REVIEW_CLOSERS_BAD,
    REVIEW_CLOSERS_GOOD,
    REVIEW_CLOSERS_MIXED,
    REVIEW_HEADLINES,
    REVIEW_NEGATIVE,
    REVIEW_OPENERS,
    REVIEW_POSITIVE,
    RIVERS,
    SEASONS,
    SURNAMES,
    TITLE_TEMPLATES,
    TOWNS,
    WEEKDAYS,
)

__all__ = ["MAKERS", "make_general", "make_listing", "make_review"]

_CHOICE = re.compile(r"<([^<>]+)>")


def _choose(rng: random.Random, template: str) -> str:
    """Replace every ``<a|b|c>`` in `template` by one of its options."""
    return _CHOICE.sub(lambda match: rng.choice(match.group(1).split("|")), template)


# ---------------------------------------------------------------------------------------------------
# Slot filling
# ---------------------------------------------------------------------------------------------------


def _numbers(rng: random.Random) -> dict[str, object]:
    """Fresh numbers and small facts for one document's templates."""
    return {
        "n": rng.choice([5000, 10000, 12000, 20000, 26800]),
        "w": rng.choice([1, 2, 3, 18, 30, 65, 100]),
        "gb": rng.choice([64, 128, 256, 512]),
        "tb": rng.choice([1, 2, 4]),
        "ft": rng.choice([3, 4, 5, 6, 10, 25]),
        "ft2": rng.choice([5, 7, 8]),
        "m": rng.choice([1, 2, 3]),
        "h": rng.choice([8, 12, 24, 30, 40, 60]),
        "ip": rng.choice([4, 5, 7]),
        "inch": rng.choice([8, 10, 12, 18, 24]),
        "qt": rng.choice([1, 2, 5, 6]),
        "oz": rng.choice([2, 4, 8, 12, 16, 24, 32]),
        "ml": rng.choice([30, 50, 250, 500, 750]),
        "l": rng.choice([1, 2, 3, 4, 5]),
        "pack": rng.choice([2, 3, 4, 6, 10, 12]),
        "deg": rng.choice([400, 450, 500]),
        "deg2": rng.choice([20, 30, 40]),
        "letter": rng.choice(["XS", "S", "M", "L", "XL", "XXL"]),
        "shoe": rng.choice(range(6, 14)),
        "waist": rng.choice(range(28, 40, 2)),
        "length": rng.choice([30, 32, 34]),
        "w_in": rng.choice([42, 52, 60]),
        "h_in": rng.choice([63, 84, 95]),
        "person": rng.choice([1, 2, 4, 6]),
        "lb": rng.choice([5, 10, 25, 52]),
        "mm": rng.choice([4, 6, 8, 10]),
        "lm": rng.choice([300, 600, 1200]),
        "days": rng.choice([2, 3, 4, 5]),
        "days2": rng.choice([30, 60, 90]),
        "spf": rng.choice([30, 50]),
        "pieces": rng.choice([24, 100, 250, 500, 1000]),
        "age": rng.choice([3, 5, 8, 12]),
        "players": rng.choice(["2-4", "2-6", "1-5"]),
        "v": rng.choice([12, 18, 20]),
        "years": rng.choice([1, 2, 3, 5]),
        "grams": rng.choice(range(80, 2400, 35)),
        "dim_a": rng.choice(range(5, 60)),
        "dim_b": rng.choice(range(5, 40)),
        "dim_c": rng.choice(range(2, 20)),
        "pct": rng.choice(range(8, 40)),
        "pct2": rng.choice([5, 10, 15, 20]),
        "n_colours": rng.choice(range(2, 9)),
        "weeks": rng.choice(range(1, 20)),
        "box_extra": rng.choice(["", ", 1 x charging cable", ", 1 x carry pouch", ", 2 x spare parts"]),
    }


def _general_slots(rng: random.Random) -> dict[str, object]:
    """Names, places, dates and counts for general-domain templates."""
    town, town2 = rng.sample(TOWNS, 2)
    return {
        "town": town,
        "town2": town2,
        "river": rng.choice(RIVERS),
        "person": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
        "century": rng.choice(["twelfth", "thirteenth", "fifteenth", "seventeenth", "eighteenth"]),
        "year": rng.randint(1180, 1500),
        "year2": rng.randint(1200, 1600),
        "year3": rng.randint(1600, 1800),
        "year4": rng.randint(1700, 1900),
        "decades": rng.randint(2, 5),
        "count": rng.randint(12, 4000),
        "count2": rng.randint(3, 9),
        "months": rng.randint(3, 18),
        "weekday": rng.choice(WEEKDAYS),
        "season": rng.choice(SEASONS),
        "score": f"{rng.randint(1, 5)}-{rng.randint(0, 2)}",
        "years": rng.randint(4, 30),
        "anniversary": rng.choice([50, 75, 100, 125, 150]),
        "pct": round(rng.uniform(0.2, 4.5), 1),
        "rate": round(rng.uniform(0.5, 5.5), 2),
        "month": rng.choice(["October", "November", "December"]),
        "minutes": rng.choice([10, 20, 35, 50]),
    }


def _product(rng: random.Random, category: str, product: str | None = None) -> dict[str, object]:
    """One invented product (of kind `product` if given): the slots a listing and its reviews share."""
    vocab = CATEGORIES[category]
    slots = _numbers(rng)
    product = product or rng.choice(vocab["products"])
    feature, feature2 = (f.format(**slots) for f in rng.sample(vocab["features"], 2))
    use, use2 = rng.sample(vocab["uses"], 2)
    slots.update(
        category=category,
        brand=rng.choice(BRANDS),
        product=product,
        product_cap=product[0].upper() + product[1:],
        material=rng.choice(vocab["materials"]),
        size=rng.choice(vocab["sizes"]).format(**slots),
        colour=rng.choice(COLOURS),
        feature=feature,
        feature2=feature2,
        feature_short=" ".join(feature.split()[:4]).rstrip(","),
        use=use,
        use2=use2,
        adjective=rng.choice(ADJECTIVES),
        audience=rng.choice(AUDIENCES),
        care=rng.choice(CARE),
    )
    return slots


def _fill(rng: random.Random, templates: list[str], k: int, slots: dict[str, object]) -> list[str]:
    """`k` distinct templates in random order, filled from `slots`."""
    return [_choose(rng, t).format(**slots) for t in rng.sample(templates, min(k, len(templates)))]


# ---------------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------------


def _listing_parts(
    rng: random.Random, category: str | None = None, product: str | None = None
) -> tuple[dict, str, list[str], list[str]]:
    """One product's slots, title, 3-7 attribute bullets and 3-9 description sentences."""
    slots = _product(rng, category or rng.choice(list(CATEGORIES)), product)
    title = rng.choice(TITLE_TEMPLATES).format(**slots)
    bullets = _fill(rng, BULLET_TEMPLATES, rng.randint(3, 7), slots)
    description = _fill(rng, DESCRIPTION_SENTENCES, rng.randint(3, 9), slots)
    return slots, title, bullets, description


def make_listing(rng: random.Random) -> tuple[str, str]:
    """A product page: title, attribute bullets and a description. Returns (text, category)."""
    slots, title, bullets, description = _listing_parts(rng)
    header = rng.choice(["About this item", "Product details", "Key features", "Highlights"])
    lines = [title, "", f"{header}:"] + [f"- {b}" for b in bullets] + ["", " ".join(description)]
    return "\n".join(lines), str(slots["category"])


def make_review(rng: random.Random) -> tuple[str, str]:
    """A customer review with a 1-5 star rating whose sentiment mix follows the rating."""
    category = rng.choice(list(CATEGORIES))
    slots = _product(rng, category)
    stars = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 2, 3, 4])[0]
    n_good = {5: 4, 4: 3, 3: 2, 2: 1, 1: 0}[stars] + rng.randint(0, 3)
    n_bad = {5: 0, 4: 1, 3: 2, 2: 3, 1: 4}[stars] + rng.randint(0, 2) * (stars < 5)
    aspects = ASPECTS[category]
    slots.update(relative=rng.choice(RELATIVES), colour2=rng.choice(COLOURS))

    def sentences(pool: list[str], k: int) -> list[str]:
        return [
            _choose(rng, s).format(aspect=rng.choice(aspects), **slots)
            for s in rng.sample(pool, min(k, len(pool)))
        ]

    body = (
        sentences(REVIEW_OPENERS, 1) + sentences(REVIEW_POSITIVE, n_good) + sentences(REVIEW_NEGATIVE, n_bad)
    )
    rng.shuffle(body[1:])
    closers = (
        REVIEW_CLOSERS_GOOD if stars >= 4 else REVIEW_CLOSERS_MIXED if stars == 3 else REVIEW_CLOSERS_BAD
    )
    body.append(rng.choice(closers))
    headline = rng.choice(REVIEW_HEADLINES[stars]).format(**slots)
    meta = rng.choice(
        ["Verified Purchase", f"Colour: {slots['colour']} | Verified Purchase", f"Size: {slots['size']}", ""]
    )
    text = f"{stars}.0 out of 5 stars {headline}\n{meta}\n{' '.join(body)}".replace("\n\n", "\n")
    return text, category


def make_general(rng: random.Random, topic: str | None = None) -> tuple[str, str]:
    """One to three paragraphs on a general topic. Returns (text, topic)."""
    topic = topic or rng.choice(list(GENERAL_TOPICS))
    pool = GENERAL_TOPICS[topic]
    slots = _general_slots(rng)
    sentences = _fill(rng, pool, rng.randint(5, 10), slots)
    n_par = rng.randint(1, 3)
    cut = sorted(rng.sample(range(1, len(sentences)), min(n_par - 1, len(sentences) - 1)))
    paragraphs = [" ".join(sentences[a:b]) for a, b in zip([0] + cut, cut + [len(sentences)])]
    return "\n\n".join(paragraphs), topic


MAKERS = {"listing": make_listing, "review": make_review, "general": make_general}
