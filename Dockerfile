# One image for web and worker; docker-compose.yml runs it with different commands.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The package carries all the product reads at run time (migrations, config defaults,
# templates, the FAQ decision), so the source is only needed to build it, and is removed:
# left in the working directory, `python -m toolkit` would import it instead.
COPY pyproject.toml README.md LICENSE NOTICE /src/
COPY toolkit /src/toolkit
RUN pip install --no-cache-dir /src && rm -rf /src && useradd --system --home /app toolkit
WORKDIR /app
USER toolkit
EXPOSE 8000
CMD ["toolkit", "serve", "--host", "0.0.0.0", "--port", "8000"]
