from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery

from booking.models import NextSlots
from practitioners.models import Practitioner, Specialty, VisitReason


def online_reasons() -> QuerySet[VisitReason]:
    return VisitReason.objects.filter(active=True, online_bookable=True)


def search_practitioners(
    *, specialty: str = "", city: str = "", q: str = ""
) -> QuerySet[Practitioner]:
    """Public search: by specialty slug, city (prefix, case-insensitive) and name words.

    Sorted by earliest availability (booking.next_slots keeps it), practitioners without any
    last, then by name. Annotated with `first_free` (None: no slot, or not bookable online).
    """
    practitioners = Practitioner.objects.select_related("practice", "specialty").prefetch_related(
        Prefetch("reasons", queryset=online_reasons(), to_attr="online_reasons")
    )
    if specialty:
        practitioners = practitioners.filter(specialty__slug=specialty)
    if city.strip():
        practitioners = practitioners.filter(practice__city__istartswith=city.strip())
    for word in q.split()[:5]:
        practitioners = practitioners.filter(
            Q(last_name__icontains=word) | Q(first_name__icontains=word)
        )
    first_free = (
        NextSlots.objects.filter(practitioner=OuterRef("pk"), first_slot__isnull=False)
        .order_by("first_slot")
        .values("first_slot")[:1]
    )
    return practitioners.annotate(first_free=Subquery(first_free)).order_by(
        F("first_free").asc(nulls_last=True), "last_name", "first_name", "id"
    )


def specialties() -> QuerySet[Specialty]:
    return Specialty.objects.order_by("name")


def practitioner_by(**lookup: object) -> Practitioner | None:
    return (
        Practitioner.objects.select_related("practice", "specialty")
        .prefetch_related(Prefetch("reasons", queryset=online_reasons(), to_attr="online_reasons"))
        .filter(**lookup)
        .first()
    )
