# framework-advisor: the REST API, the web questionnaire and one job worker.
#   docker build -t framework-advisor .
#   docker run -p 8000:8000 -v advisor-data:/data framework-advisor
#   docker run -e FWADVISOR_PORT=9000 -p 9000:9000 -v advisor-data:/data framework-advisor
# FWADVISOR_PORT is the one port setting: `fwadvisor serve` binds it by default and the
# health check asks it. Another command: docker run framework-advisor worker
# Measurements describe the machine they ran on: give the container the cores you
# want to measure (--cpus), and read the environment fingerprint in each report.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FWADVISOR_DATA_DIR=/data \
    FWADVISOR_HOST=0.0.0.0 \
    FWADVISOR_PORT=8000

RUN useradd --create-home --no-log-init --uid 10001 advisor \
    && mkdir /data \
    && chown advisor:advisor /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY probes ./probes
COPY recommender ./recommender
COPY service ./service
COPY data ./data
# torch==2.13.0 resolves to the CPU build from PyTorch's index (PyPI's is the CUDA one).
# Editable, because the zoo, questionnaire and capability matrix live in /app/data.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -e '.[export]'

USER 10001:10001
VOLUME ["/data"]
EXPOSE ${FWADVISOR_PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/v1/health' % os.environ['FWADVISOR_PORT']; sys.exit(urllib.request.urlopen(url, timeout=4).status != 200)"]
ENTRYPOINT ["fwadvisor"]
CMD ["serve"]
