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
CMD ["moderation", "api"]
