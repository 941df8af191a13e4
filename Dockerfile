# One image for web and worker; docker-compose.yml runs it with different commands.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY toolkit ./toolkit
RUN pip install --no-cache-dir . && useradd --system --home /app toolkit
USER toolkit
EXPOSE 8000
CMD ["toolkit", "serve", "--host", "0.0.0.0", "--port", "8000"]
