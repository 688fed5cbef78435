from django.db import connection
from django.http import HttpRequest, JsonResponse

from audit.registry import audit_exempt


@audit_exempt("liveness probe")
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and docker-compose health checks."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means "not ready"; no detail leaks out
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
