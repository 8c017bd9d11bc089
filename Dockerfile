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
USER nobody
CMD ["moderation", "api"]
