"""Fake French demo data for `seed_demo`: plain values, no database.

Everything about practitioner n (or patient n) comes from a random generator seeded with n alone, so
a run with more practitioners reproduces the first ones exactly and adds only the rest. Built-in
name lists keep Faker a development dependency. No real person: names are drawn independently.
"""

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.utils.text import slugify

from booking.availability import Interval, OpeningRule

T = TypeVar("T")


def words(text: str) -> list[str]:
    return text.split()


# Fake names only, drawn independently of one another.
FEMALE_NAMES = words(
    "Camille Léa Manon Chloé Emma Inès Jade Louise Alice Juliette Sarah Clara Lucie Anaïs Marie "
    "Julie Pauline Mathilde Charlotte Élise Margaux Zoé Nathalie Isabelle Sophie Sandrine "
    "Valérie Céline Aurélie Émilie Claire Hélène Catherine Christine Sylvie Martine Agnès Nina"
)
MALE_NAMES = words(
    "Lucas Hugo Louis Gabriel Arthur Jules Nathan Léo Raphaël Thomas Adam Paul Maxime Antoine "
    "Alexandre Nicolas Julien Pierre Guillaume Romain Mathieu Vincent Olivier Laurent Stéphane "
    "Philippe Éric Christophe Sébastien François Benoît Yann Karim Mehdi Bruno Didier Théo Samuel"
)
LAST_NAMES = words(
    "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel Lefebvre "
    "Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine Rousseau "
    "Vincent Muller Lefèvre Faure André Mercier Blanc Guérin Boyer Garnier Chevalier François "
    "Legrand Gauthier Garcia Perrin Robin Clément Morin Nicolas Henry Roussel Mathieu Gautier "
    "Masson Marchand Duval Denis Dumont Marie Lemaire Noël Meyer Dufour Meunier Brun Blanchard "
    "Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud Martinez Gérard Roche Renard "
    "Schmitt Roy Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud Dumas Lacroix "
    "Olivier Bourgeois Pierre Benoît Rey Leclerc Payet Rolland Leclercq Guillaume Lecomte Lopez "
    "Jean Dupuy Guillot Hubert Berger Carpentier Sanchez Dupuis Moulin Louis Deschamps Huet "
    "Vasseur Perez Boucher Fleury Royer Klein Jacquet Adam Poirier Marty Aubry Guyot Carré "
    "Charles Benali Haddad Nguyen Tran Lopes Ferreira Koné Diallo Traoré Mendy"
)

# name, slug, weight; reasons: label, minutes, online, for (all/new/existing). The first reason is
# the usual one; the last is the one booked by phone only.
SPECIALTIES: list[tuple[str, str, int, list[tuple[str, int, bool, str]]]] = [
    ("Médecin généraliste", "medecin-generaliste", 30, [
        ("Consultation", 15, True, "all"), ("Première consultation", 30, True, "new"),
        ("Renouvellement d'ordonnance", 15, True, "existing"),
        ("Certificat de sport", 15, True, "all"), ("Visite à domicile", 45, False, "existing")]),
    ("Dentiste", "dentiste", 14, [
        ("Consultation de contrôle", 30, True, "all"), ("Première consultation", 30, True, "new"),
        ("Détartrage", 30, True, "existing"), ("Urgence dentaire", 20, True, "all"),
        ("Soins (suite de traitement)", 45, False, "existing")]),
    ("Pédiatre", "pediatre", 6, [
        ("Consultation enfant", 20, True, "all"), ("Vaccination", 15, True, "existing"),
        ("Première consultation nourrisson", 30, True, "new"), ("Bilan de santé", 30, True, "all"),
        ("Consultation longue (troubles du développement)", 60, False, "existing")]),
    ("Dermatologue", "dermatologue", 6, [
        ("Consultation", 20, True, "all"), ("Première consultation", 30, True, "new"),
        ("Contrôle des grains de beauté", 30, True, "all"),
        ("Acte de petite chirurgie", 45, False, "existing")]),
    ("Ophtalmologue", "ophtalmologue", 7, [
        ("Consultation", 20, True, "all"), ("Première consultation", 30, True, "new"),
        ("Renouvellement de lunettes", 20, True, "existing"),
        ("Examen du fond d'œil", 30, False, "existing")]),
    ("Gynécologue", "gynecologue", 7, [
        ("Consultation de suivi", 20, True, "existing"), ("Première consultation", 30, True, "new"),
        ("Frottis", 20, True, "all"), ("Suivi de grossesse", 30, True, "all"),
        ("Pose de stérilet", 30, False, "existing")]),
    ("Masseur-kinésithérapeute", "kinesitherapeute", 14, [
        ("Séance de rééducation", 30, True, "existing"), ("Bilan initial", 45, True, "new"),
        ("Rééducation du dos", 30, True, "all"), ("Séance à domicile", 45, False, "existing")]),
    ("Psychiatre", "psychiatre", 6, [
        ("Consultation de suivi", 30, True, "existing"), ("Première consultation", 60, True, "new"),
        ("Téléconsultation de suivi", 30, True, "existing"),
        ("Bilan approfondi", 90, False, "existing")]),
    ("Cardiologue", "cardiologue", 5, [
        ("Consultation", 30, True, "all"), ("Première consultation", 45, True, "new"),
        ("Électrocardiogramme", 20, True, "existing"),
        ("Échographie cardiaque", 45, False, "existing")]),
    ("ORL", "orl", 5, [
        ("Consultation", 20, True, "all"), ("Première consultation", 30, True, "new"),
        ("Audiogramme", 30, True, "existing"), ("Lavage d'oreille", 15, False, "existing")]),
]  # fmt: skip

# city, weight, postcodes, neighbourhoods (practice names), streets
CITIES: list[tuple[str, int, list[str], list[str]]] = [
    ("Paris", 30, [f"750{n:02d}" for n in range(1, 21)],
     ["Montmartre", "Bastille", "Batignolles", "Nation", "Marais", "Convention", "Ternes"]),
    ("Lyon", 12, [f"6900{n}" for n in range(1, 10)],
     ["Bellecour", "Croix-Rousse", "Part-Dieu", "Confluence", "Monplaisir"]),
    ("Marseille", 12, [f"130{n:02d}" for n in range(1, 17)],
     ["Vieux-Port", "Castellane", "Prado", "Joliette", "Saint-Barnabé"]),
    ("Toulouse", 9, ["31000", "31100", "31200", "31300", "31400", "31500"],
     ["Capitole", "Saint-Cyprien", "Carmes", "Compans", "Rangueil"]),
    ("Bordeaux", 8, ["33000", "33100", "33200", "33300", "33800"],
     ["Chartrons", "Saint-Michel", "Bastide", "Caudéran"]),
    ("Nantes", 8, ["44000", "44100", "44200", "44300"],
     ["Graslin", "Île de Nantes", "Talensac", "Chantenay"]),
    ("Lille", 8, ["59000", "59160", "59260", "59800"],
     ["Vieux-Lille", "Wazemmes", "Fives", "Vauban"]),
    ("Strasbourg", 7, ["67000", "67100", "67200"],
     ["Krutenau", "Neudorf", "Orangerie", "Petite France"]),
]  # fmt: skip
STREETS = (
    "rue de la République", "avenue Jean Jaurès", "boulevard Victor Hugo", "rue Pasteur",
    "place de la Mairie", "rue Nationale", "avenue Foch", "rue Gambetta", "rue du Général Leclerc",
    "rue de la Paix", "avenue de la Libération", "rue Émile Zola", "boulevard Carnot",
    "rue des Lilas", "rue Voltaire", "quai des Tanneurs", "rue Saint-Jean", "cours Lafayette",
)  # fmt: skip
PRACTICE_KINDS = ("Cabinet médical", "Centre de santé", "Maison de santé", "Pôle santé")
CANCELLATION_REASONS = ("Empêchement", "Déplacement professionnel", "Rendez-vous déplacé", "")


@dataclass(frozen=True)
class PracticePlan:
    name: str
    address: str
    postcode: str
    city: str


@dataclass(frozen=True)
class ReasonPlan:
    label: str
    duration_minutes: int
    online_bookable: bool
    patient_kind: str
    position: int


@dataclass(frozen=True)
class HoursPlan:
    weekday: int
    start: time
    end: time
    valid_from: date | None = None
    valid_until: date | None = None
    reason_positions: tuple[int, ...] = ()  # empty: every reason


@dataclass(frozen=True)
class PractitionerPlan:
    number: int
    first_name: str
    last_name: str
    slug: str
    specialty_slug: str
    practice_key: int
    rpps: str
    settings: dict[str, int | bool]
    reasons: list[ReasonPlan]
    hours: list[HoursPlan]
    absences: list[tuple[datetime, datetime, str]]  # aware, local time zone

    @property
    def email(self) -> str:
        return f"practitioner{self.number}@demo.test"


@dataclass(frozen=True)
class PatientPlan:
    number: int
    first_name: str
    last_name: str
    birth_date: date
    phone: str
    relatives: list[tuple[str, date, str]] = field(default_factory=list)  # first name, born, kind

    @property
    def email(self) -> str:
        return f"patient{self.number}@demo.test"


def demo_rng(kind: str, number: int) -> random.Random:
    return random.Random(f"creneau-demo-{kind}-{number}")  # noqa: S311 (fake data, not secrets)


def _weighted(rng: random.Random, items: Sequence[T], *, weight_at: int) -> T:
    """One of `items`, tuples holding their weight at index `weight_at`."""
    return rng.choices(items, weights=[item[weight_at] for item in items])[0]  # type: ignore[index]


def luhn_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def rpps_number(number: int) -> str:
    """An 11-digit RPPS identifier with its Luhn key, distinct for every n below 10**8."""
    body = f"10{(number * 7919 + 31337) % 10**8:08d}"
    return body + luhn_digit(body)


def _practice_size(key: int) -> int:
    # The first practices are solo, one per city; then a mix of solo and group practices.
    return 1 if key < len(CITIES) else (1, 2, 1, 3, 1, 2)[key % 6]


def practice_keys(count: int) -> list[int]:
    """The practice of practitioners 1..count; a prefix of the list for any larger count."""
    keys: list[int] = []
    key = 0
    while len(keys) < count:
        keys.extend([key] * _practice_size(key))
        key += 1
    return keys[:count]


def practice_plan(key: int) -> PracticePlan:
    rng = demo_rng("practice", key)
    city, _weight, postcodes, neighbourhoods = (
        CITIES[key] if key < len(CITIES) else _weighted(rng, CITIES, weight_at=1)
    )
    return PracticePlan(
        name=f"{rng.choice(PRACTICE_KINDS)} {rng.choice(neighbourhoods)}",
        address=f"{rng.randint(1, 180)} {rng.choice(STREETS)}",
        postcode=rng.choice(postcodes),
        city=city,
    )


def _reasons(rng: random.Random, templates: list[tuple[str, int, bool, str]]) -> list[ReasonPlan]:
    usual, *others, phone_only = templates
    chosen = [usual, *rng.sample(others, rng.randint(1, min(2, len(others))))]
    if rng.random() < 0.7:
        chosen.append(phone_only)
    return [ReasonPlan(label, minutes, online, kind, index)
            for index, (label, minutes, online, kind) in enumerate(chosen)]  # fmt: skip


def _hours(rng: random.Random, reasons: list[ReasonPlan], today: date) -> list[HoursPlan]:
    morning = (rng.choice([time(8), time(8, 30), time(9)]), rng.choice([time(12), time(12, 30)]))
    afternoon = (rng.choice([time(13, 30), time(14)]), rng.choice([time(18), time(19)]))
    off = rng.choice([None, (2, "pm"), (3, "am"), (3, "pm"), (4, "pm")])
    phone_only = [r.position for r in reasons if not r.online_bookable]
    hours: list[HoursPlan] = []
    for weekday in range(5):
        if off != (weekday, "am"):
            hours.append(HoursPlan(weekday, *morning))
        if off == (weekday, "pm"):
            continue
        if weekday == 1 and phone_only and rng.random() < 0.5:
            # Tuesday afternoon kept for the acts the practice books itself.
            hours.append(HoursPlan(weekday, *afternoon, reason_positions=(phone_only[0],)))
        elif weekday == 4 and rng.random() < 0.15:
            # Summer hours: Friday ends early until a date, then the usual hours again.
            switch = today + timedelta(days=rng.randint(7, 21))
            hours.append(HoursPlan(4, afternoon[0], time(16), valid_until=switch))
            hours.append(HoursPlan(4, *afternoon, valid_from=switch + timedelta(days=1)))
        else:
            hours.append(HoursPlan(weekday, *afternoon))
    if rng.random() < 0.35:
        only_usual = (0,) if rng.random() < 0.5 else ()
        hours.append(HoursPlan(5, time(9), time(12), reason_positions=only_usual))
    return hours


def _absences(
    rng: random.Random, today: date, tz: ZoneInfo, *, soon: bool
) -> list[tuple[datetime, datetime, str]]:
    """Holidays, a training afternoon (`soon`: two weekdays ahead at most), a past day off."""

    def at(day: date, hour: int = 0) -> datetime:
        return datetime.combine(day, time(hour), tzinfo=tz)

    absences = []
    if rng.random() < 0.25:
        first = today + timedelta(days=rng.randint(5, 40))
        absences.append((at(first), at(first + timedelta(days=rng.randint(3, 7))), "Congés"))
    if soon or rng.random() < 0.15:
        day = today + timedelta(days=2 if soon else rng.randint(1, 30))
        while soon and day.weekday() >= 5:
            day += timedelta(days=1)
        absences.append((at(day, 13), at(day, 20), "Formation"))
    if rng.random() < 0.1:
        day = today - timedelta(days=rng.randint(1, 10))
        absences.append((at(day), at(day + timedelta(days=1)), "Absence"))
    return absences


def practitioner_plan(
    number: int, *, practice_key: int, today: date, tz: ZoneInfo
) -> PractitionerPlan:
    """Practitioner `number` (from 1). The first ones cover every specialty; dates from `today`."""
    rng = demo_rng("practitioner", number)
    _name, slug, _weight, templates = (
        SPECIALTIES[number - 1]
        if number <= len(SPECIALTIES)
        else _weighted(rng, SPECIALTIES, weight_at=2)
    )
    first_name = rng.choice(FEMALE_NAMES if rng.random() < 0.55 else MALE_NAMES)
    last_name = rng.choice(LAST_NAMES)
    reasons = _reasons(rng, templates)
    return PractitionerPlan(
        number=number,
        first_name=first_name,
        last_name=last_name,
        slug=f"{slugify(f'{first_name} {last_name}')}-{number}",
        specialty_slug=slug,
        practice_key=practice_key,
        rpps=rpps_number(number),
        settings={
            "accepts_new_patients": rng.random() < 0.85,
            "online_booking_enabled": number <= 10 or rng.random() < 0.95,
            "minimum_notice_minutes": rng.choice([0, 60, 120, 120, 240, 1440]),
            "booking_horizon_days": rng.choice([30, 60, 60, 90]),
            "cancellation_notice_hours": rng.choice([24, 24, 48]),
        },
        reasons=reasons,
        hours=_hours(rng, reasons, today),
        absences=_absences(rng, today, tz, soon=number <= 3),
    )


def patient_plan(number: int) -> PatientPlan:
    rng = demo_rng("patient", number)
    last_name = rng.choice(LAST_NAMES)
    relatives: list[tuple[str, date, str]] = []
    children = 2 if number == 1 else (rng.choice([1, 1, 2, 3]) if rng.random() < 0.25 else 0)
    for _child in range(children):
        born = date(2009, 1, 1) + timedelta(days=rng.randrange(16 * 365))
        relatives.append((rng.choice(FEMALE_NAMES + MALE_NAMES), born, "child"))
    if rng.random() < 0.05:
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(20 * 365))
        relatives.append((rng.choice(FEMALE_NAMES + MALE_NAMES), born, "parent"))
    return PatientPlan(
        number=number,
        first_name=rng.choice(FEMALE_NAMES + MALE_NAMES),
        last_name=last_name,
        birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(65 * 365)),
        phone=f"0{rng.choice('67')}{rng.randrange(10**8):08d}",
        relatives=relatives,
    )


# --- Appointments on the availability grid ---------------------------------------------------


@dataclass(frozen=True)
class FillRate:
    """Share of grid positions booked before and after `now`."""

    now: datetime
    past: float
    future: float


@dataclass(frozen=True, slots=True)
class GridSlot:
    start: datetime  # UTC
    end: datetime
    reason_id: int


def grid_slots(
    *,
    rules: Sequence[OpeningRule],
    durations: dict[int, timedelta],
    absences: Sequence[Interval],
    tz: ZoneInfo,
    first_day: date,
    last_day: date,
    fill: FillRate,
    rng: random.Random,
) -> Iterator[GridSlot]:
    """Appointments that the engine would offer and that never overlap one another.

    Walks each opening range from its start; each step picks a reason the range allows and moves
    to the next start on that reason's grid (range start + k * duration), so every start is one
    the engine offers. Rules must not overlap one another on a day.
    """
    day = first_day
    while day <= last_day:
        for rule in sorted(rules, key=lambda rule: rule.start):
            allowed = [rid for rid in durations if rule.applies(day, rid)]
            if allowed:
                yield from _walk(rule, day, allowed, durations, absences, tz, fill, rng)
        day += timedelta(days=1)


def _walk(
    rule: OpeningRule,
    day: date,
    allowed: list[int],
    durations: dict[int, timedelta],
    absences: Sequence[Interval],
    tz: ZoneInfo,
    fill: FillRate,
    rng: random.Random,
) -> Iterator[GridSlot]:
    opening, closing = datetime.combine(day, rule.start), datetime.combine(day, rule.end)
    weights = [3 if rid == allowed[0] else 1 for rid in allowed]
    cursor = opening
    while True:
        reason_id = rng.choices(allowed, weights=weights)[0]
        duration = durations[reason_id]
        wall = opening + -(-(cursor - opening) // duration) * duration  # next start on its grid
        if wall + duration > closing:
            return
        cursor = wall + duration
        start = wall.replace(tzinfo=tz).astimezone(UTC)
        if start.astimezone(tz).replace(tzinfo=None) != wall:
            continue  # in the spring-forward gap: not a slot
        end = start + duration
        if rng.random() >= (fill.past if start < fill.now else fill.future):
            continue
        if any(a.start < end and start < a.end for a in absences):
            continue
        yield GridSlot(start, end, reason_id)
