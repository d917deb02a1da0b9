# Waymark service image: multi-stage, non-root, with a HEALTHCHECK. No development keys are baked
# in: the service reads its identity-provider settings from the environment at start-up.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/waymark
COPY pyproject.toml README.md ./
COPY models ./models
COPY training ./training
COPY fairness ./fairness
COPY service ./service
COPY waymark ./waymark
RUN /opt/waymark/bin/pip install --upgrade pip && /opt/waymark/bin/pip install .

FROM python:3.11-slim AS runtime
# LightGBM needs the OpenMP runtime.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
# A fixed uid and gid, so that a secret file mounted from the host can be given to this user alone
# (compose's file secrets keep the host file's owner and mode: chmod 400 audit.key; sudo chown 10001 audit.key).
RUN groupadd --system --gid 10001 waymark && useradd --system --uid 10001 --gid waymark \
        --home-dir /srv/waymark --create-home waymark \
    && mkdir /data && chown waymark:waymark /data
# /data holds data folders (a volume in compose.yaml): import into a folder inside it, /data/current,
# since an import stages beside the folder it replaces.
COPY --from=build /opt/waymark /opt/waymark
ENV PATH=/opt/waymark/bin:$PATH PYTHONUNBUFFERED=1 WAYMARK_ENV=production \
    NUMBA_CACHE_DIR=/tmp/numba-cache
WORKDIR /srv/waymark
USER waymark
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]
CMD ["waymark", "serve", "--host", "0.0.0.0", "--port", "8000"]
