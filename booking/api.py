"""REST API v1 (DESIGN contracts). Thin: parse, call a selector or service, serialize."""

from datetime import date
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from audit.actors import Actor, actor_for
from audit.models import Channel
from audit.registry import audit_exempt, audited
from booking import services
from booking.api_base import ApiView, errors, id_in_path, paginated
from booking.models import Appointment
from booking.next_slots import next_slots_for, refresh_stale_next_slots
from booking.selectors import access_appointment, appointments_for, staff_level
from booking.slots import free_slots_for
from patients.models import Patient, Relative
from practitioners.models import Practitioner, VisitReason
from practitioners.selectors import practitioner_by, search_practitioners, specialties

PAGE_SIZE = 20
MAX_OFFSET = 1_000_000
BIGINT_MAX = 2**63 - 1
MAX_SLOTS_START_OFFSET_DAYS = 366


def api_actor(request: Request) -> Actor:
    return actor_for(request, channel=Channel.API)


def _page_links(request: Request, *, offset: int, limit: int, total: int) -> dict[str, Any]:
    def link(new_offset: int) -> str:
        query = request.query_params.copy()
        query["offset"] = str(new_offset)
        query["limit"] = str(limit)
        return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

    return {
        "count": total,
        "next": link(offset + limit) if offset + limit < total else None,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
    }


class IdField(serializers.IntegerField):
    """An id in a request: bounded to what a bigint key holds, or a foreign-key filter with a
    larger number crashes the database driver (SQLite) instead of answering 400."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)


class PageInput(serializers.Serializer):
    # Bounded: PostgreSQL refuses an OFFSET beyond bigint, which would be a 500.
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=PAGE_SIZE)


# --- Public: specialties, practitioners, slots ----------------------------------------------


class SpecialtyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.SlugField()


@audit_exempt("public: specialties")
class SpecialtyListApi(ApiView):
    @extend_schema(responses={200: SpecialtyOutput(many=True), **errors(429)})
    def get(self, request: Request) -> Response:
        return Response(SpecialtyOutput(specialties(), many=True).data)


class ReasonOutput(serializers.Serializer):
    id = serializers.IntegerField()
    # Named like Field.label, which mypy sees; DRF moves declared fields off the class.
    label = serializers.CharField()  # type: ignore[assignment]
    duration = serializers.IntegerField(source="duration_minutes", help_text="minutes")
    patient_kind = serializers.CharField()


class PractitionerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.SlugField()
    name = serializers.CharField(source="display_name")
    specialty = SpecialtyOutput()
    practice = inline_serializer(
        "Practice",
        {
            "name": serializers.CharField(),
            "address": serializers.CharField(),
            "postcode": serializers.CharField(),
            "city": serializers.CharField(),
            "timezone": serializers.CharField(),
        },
    )
    accepts_new_patients = serializers.BooleanField()
    online_booking_enabled = serializers.BooleanField()


class NextSlotOutput(serializers.Serializer):
    start = serializers.DateTimeField()
    reason = serializers.IntegerField(source="reason_id")


class PractitionerListOutput(PractitionerOutput):
    next_available = serializers.DateTimeField(allow_null=True)
    next_slots = NextSlotOutput(
        many=True, source="free_slots", help_text="The next three free slots, any reason."
    )


class PractitionerDetailOutput(PractitionerOutput):
    reasons = ReasonOutput(many=True, source="online_reasons")


@audit_exempt("public: practitioners and their next free slots")
class PractitionerListApi(ApiView):
    class FilterInput(PageInput):
        # Blank is the same as absent: no filter.
        specialty = serializers.SlugField(required=False, default="", allow_blank=True)
        city = serializers.CharField(required=False, default="", allow_blank=True, max_length=100)
        q = serializers.CharField(required=False, default="", allow_blank=True, max_length=100)

    @extend_schema(
        operation_id="practitioners_list",
        parameters=[FilterInput],
        responses={
            200: paginated("PractitionerPage", PractitionerListOutput(many=True)),
            **errors(400, 429),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        practitioners = search_practitioners(
            specialty=filters["specialty"], city=filters["city"], q=filters["q"]
        )
        offset, limit = filters["offset"], filters["limit"]
        refresh_stale_next_slots(practitioners=practitioners)  # before sorting by them
        total = practitioners.count()
        page = list(practitioners[offset : offset + limit])
        slots = next_slots_for(page)
        for practitioner in page:
            free = slots[practitioner.pk]
            practitioner.free_slots = free  # type: ignore[attr-defined]
            practitioner.next_available = free[0].start if free else None  # type: ignore[attr-defined]
        return Response(
            {
                **_page_links(request, offset=offset, limit=limit, total=total),
                "results": PractitionerListOutput(page, many=True).data,
            }
        )


def _public_practitioner(practitioner_id: int) -> Practitioner:
    practitioner = practitioner_by(pk=practitioner_id)
    if practitioner is None:
        raise NotFound()
    return practitioner


@audit_exempt("public: a practitioner and their reasons")
class PractitionerDetailApi(ApiView):
    @extend_schema(
        parameters=[id_in_path("practitioner_id")],
        responses={200: PractitionerDetailOutput, **errors(404, 429)},
    )
    def get(self, request: Request, practitioner_id: int) -> Response:
        return Response(PractitionerDetailOutput(_public_practitioner(practitioner_id)).data)


@audit_exempt("public: free slots only")
class PractitionerSlotsApi(ApiView):
    class SlotsInput(serializers.Serializer):
        reason = IdField()
        start = serializers.DateField(required=False)
        days = serializers.IntegerField(
            min_value=1, max_value=settings.CRENEAU_API_MAX_DAYS, default=7
        )

        def validate_start(self, value: date) -> date:
            # No horizon exceeds a year, and a date near year 1 or 9999 would overflow the
            # engine's date arithmetic: refuse it here with a field message.
            today = timezone.localdate()
            if abs((value - today).days) > MAX_SLOTS_START_OFFSET_DAYS:
                raise ValidationError("Choose a date within a year of today.")
            return value

    @extend_schema(
        parameters=[id_in_path("practitioner_id"), SlotsInput],
        responses={
            200: inline_serializer(
                "Slots",
                {
                    "reason": serializers.IntegerField(),
                    "timezone": serializers.CharField(),
                    "slots": serializers.ListField(child=serializers.DateTimeField()),
                },
            ),
            **errors(400, 404, 429),
        },
    )
    def get(self, request: Request, practitioner_id: int) -> Response:
        practitioner = _public_practitioner(practitioner_id)
        params = self.SlotsInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        reason = _online_reason(practitioner, params.validated_data["reason"])
        first_day: date = params.validated_data.get("start") or timezone.localdate(
            timezone=practitioner.practice.tz
        )
        slots = (
            free_slots_for(
                practitioner=practitioner,
                reason=reason,
                first_day=first_day,
                days=params.validated_data["days"],
            )
            if practitioner.online_booking_enabled
            else []
        )
        return Response(
            {
                "reason": reason.pk,
                "timezone": practitioner.practice.timezone,
                "slots": [slot.isoformat().replace("+00:00", "Z") for slot in slots],
            }
        )


def _online_reason(practitioner: Practitioner, reason_id: int) -> VisitReason:
    for reason in practitioner.online_reasons:  # type: ignore[attr-defined]
        if reason.pk == reason_id:
            return reason
    raise ValidationError({"reason": ["Unknown visit reason for this practitioner."]})


# --- Appointments (authenticated, scoped by actor, audited) ----------------------------------


class AppointmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    practitioner = inline_serializer(
        "AppointmentPractitioner",
        {"id": serializers.IntegerField(), "name": serializers.CharField(source="display_name")},
    )
    reason = inline_serializer(
        "AppointmentReason",
        {"id": serializers.IntegerField(), "label": serializers.CharField()},
    )
    patient = inline_serializer(
        "AppointmentPatient",
        {"id": serializers.IntegerField(), "name": serializers.CharField(source="full_name")},
    )
    relative = inline_serializer(
        "AppointmentRelative",
        {"id": serializers.IntegerField(), "name": serializers.CharField(source="full_name")},
        allow_null=True,
    )
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    timezone = serializers.CharField(source="practitioner.practice.timezone")
    status = serializers.CharField()
    channel = serializers.CharField()
    cancelled_by = serializers.CharField()
    cancellation_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


@audited
class AppointmentListCreateApi(ApiView):
    permission_classes = [IsAuthenticated]

    class FilterInput(PageInput):
        practitioner = IdField(required=False)
        status = serializers.ChoiceField(choices=Appointment.Status.choices, required=False)
        start_from = serializers.DateTimeField(required=False)
        start_before = serializers.DateTimeField(required=False)

    class CreateInput(serializers.Serializer):
        practitioner = IdField()
        reason = IdField()
        start = serializers.DateTimeField()
        relative = IdField(required=False, allow_null=True)
        patient = IdField(
            required=False, help_text="Staff only: an existing patient of the practitioner."
        )

    @extend_schema(
        operation_id="appointments_list",
        parameters=[FilterInput],
        responses={
            200: paginated("AppointmentPage", AppointmentOutput(many=True)),
            **errors(400, 401, 403, 429),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.FilterInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        page = appointments_for(
            actor=api_actor(request),
            practitioner_id=filters.get("practitioner"),
            status=filters.get("status"),
            start_from=filters.get("start_from"),
            start_before=filters.get("start_before"),
            offset=filters["offset"],
            limit=filters["limit"],
        )
        return Response(
            {
                **_page_links(request, offset=page.offset, limit=page.limit, total=page.total),
                "results": AppointmentOutput(page.items, many=True).data,
            }
        )

    @extend_schema(
        request=CreateInput,
        responses={201: AppointmentOutput, **errors(400, 401, 403, 404, 409, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        data = self.CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        actor = api_actor(request)
        appointment = services.book_appointment(
            actor=actor, **resolve_booking(actor, data.validated_data)
        )
        return Response(AppointmentOutput(appointment).data, status=201)


def resolve_booking(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Turn the ids of a booking request into objects, with a field error for each bad one."""
    practitioner = practitioner_by(pk=data["practitioner"])
    if practitioner is None:
        raise ValidationError({"practitioner": ["Unknown practitioner."]})
    reason = VisitReason.objects.filter(
        pk=data["reason"], practitioner=practitioner, active=True
    ).first()
    if reason is None:
        raise ValidationError({"reason": ["Unknown visit reason for this practitioner."]})
    patient = _booking_patient(actor, practitioner, data.get("patient"))
    relative = None
    if data.get("relative") is not None:
        relative = Relative.objects.filter(pk=data["relative"], managed_by=patient).first()
        if relative is None:
            raise ValidationError({"relative": ["Unknown relative."]})
    return {
        "practitioner": practitioner,
        "reason": reason,
        "start": data["start"],
        "patient": patient,
        "relative": relative,
        "channel": Appointment.Channel.API,
    }


def _booking_patient(actor: Actor, practitioner: Practitioner, patient_id: int | None) -> Patient:
    if patient_id is None:
        patient = Patient.objects.filter(user=actor.user).first() if actor.user else None
        if patient is None:
            raise ValidationError({"patient": ["Your account has no patient profile."]})
        return patient
    unknown = ValidationError({"patient": ["Unknown patient for this practitioner."]})
    # Only the practice may name the patient. Anyone else gets the same answer whatever the id,
    # or the 400/403 difference would tell who is a patient of this practitioner.
    if staff_level(actor, practitioner.pk) is None:
        raise unknown
    # Staff booking for someone: only a patient already known to this practitioner.
    patient = Patient.objects.filter(pk=patient_id, appointments__practitioner=practitioner).first()
    if patient is None:
        raise unknown
    return patient


@audited
class AppointmentDetailApi(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[id_in_path("appointment_id")],
        responses={200: AppointmentOutput, **errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, appointment_id: int) -> Response:
        appointment = access_appointment(actor=api_actor(request), appointment_id=appointment_id)
        return Response(AppointmentOutput(appointment).data)


@audited
class AppointmentCancelApi(ApiView):
    permission_classes = [IsAuthenticated]

    class CancelInput(serializers.Serializer):
        reason = serializers.CharField(required=False, default="", max_length=300)

    @extend_schema(
        parameters=[id_in_path("appointment_id")],
        request=CancelInput,
        responses={200: AppointmentOutput, **errors(400, 401, 403, 404, 415, 429)},
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        data = self.CancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        appointment = services.cancel_appointment(
            actor=api_actor(request),
            appointment_id=appointment_id,
            reason=data.validated_data["reason"],
        )
        return Response(AppointmentOutput(appointment).data)


@audited
class AppointmentRescheduleApi(ApiView):
    permission_classes = [IsAuthenticated]

    class RescheduleInput(serializers.Serializer):
        start = serializers.DateTimeField()

    @extend_schema(
        parameters=[id_in_path("appointment_id")],
        request=RescheduleInput,
        responses={200: AppointmentOutput, **errors(400, 401, 403, 404, 409, 415, 429)},
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        data = self.RescheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        appointment = services.reschedule_appointment(
            actor=api_actor(request),
            appointment_id=appointment_id,
            start=data.validated_data["start"],
        )
        return Response(AppointmentOutput(appointment).data)


@audited
class AppointmentStatusApi(ApiView):
    permission_classes = [IsAuthenticated]

    class StatusInput(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=[s for s in Appointment.Status.choices if s[0] != Appointment.Status.CANCELLED]
        )

    @extend_schema(
        parameters=[id_in_path("appointment_id")],
        request=StatusInput,
        responses={200: AppointmentOutput, **errors(400, 401, 403, 404, 415, 429)},
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        data = self.StatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        appointment = services.mark_status(
            actor=api_actor(request),
            appointment_id=appointment_id,
            status=data.validated_data["status"],
        )
        return Response(AppointmentOutput(appointment).data)
