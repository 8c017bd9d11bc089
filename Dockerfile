# One image for every role (api, worker, beat); the command picks the role.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY workers ./workers
COPY classifier ./classifier
COPY migrations ./migrations
RUN pip install --no-cache-dir .
# var/ holds each process's cache of promoted models (and, unset, the web secret): writable.
RUN mkdir -p /app/var && chown nobody /app/var
USER nobody
# Reachable from outside the container (the compose file says the same).
ENV MODERATION_API_HOST=0.0.0.0
# `moderation api` runs uvicorn with --forwarded-allow-ips from MODERATION_TRUSTED_PROXIES, or
# --no-proxy-headers when that is empty; uvicorn run by hand would trust 127.0.0.1 (and
# $FORWARDED_ALLOW_IPS) instead, so start the API through this command.
CMD ["moderation", "api"]
