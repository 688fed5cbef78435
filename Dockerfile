# Production-like image: gunicorn serving Django; the same image runs the Celery worker and beat.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 creneau
WORKDIR /app

COPY pyproject.toml README.md ./
COPY config ./config
COPY accounts ./accounts
COPY practitioners ./practitioners
COPY patients ./patients
COPY booking ./booking
COPY audit ./audit
RUN pip install .

COPY . .
# collectstatic needs settings to import: throwaway values at build time only.
RUN DEBUG=off SECRET_KEY=build FIELD_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    BLIND_INDEX_KEY=build python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown -R creneau /app/var

USER creneau
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--access-logfile", "-"]
