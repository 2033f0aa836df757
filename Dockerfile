# growup image: the locked environment plus the package; entrypoint snakemake, so
#   docker run --gpus all -v "$PWD":/work IMAGE --cores all
# reproduces the study in the mounted checkout. torch==2.13.0 from the lock resolves to PyPI's
# CUDA build on linux/x86_64 (it brings its own CUDA runtime libraries; the host needs the driver).
FROM python:3.11.7-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends git make \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory '*'

WORKDIR /opt/growup
COPY requirements.lock ./
RUN python -m pip install --upgrade pip==26.3 && python -m pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install --no-deps .

RUN useradd --create-home --uid 1000 growup
USER growup
WORKDIR /work
ENTRYPOINT ["snakemake"]
CMD ["--cores", "all"]
