# growup image: the locked environment plus the package, on CUDA; entrypoint snakemake, so
#   docker run --gpus all -v "$PWD":/work growup:0.1.0 --cores all
# reproduces the study in the mounted checkout (`make image` builds and tags it; files are written
# as UID 1000, else add --user "$(id -u):$(id -g)" -e HOME=/tmp). Under
# `snakemake --sdm apptainer` the same image runs each job (the Snakefile's `container:`).
#
# CUDA: torch==2.13.0 from requirements.lock is PyPI's CUDA 13.0 build on linux/x86_64. Its wheel
# requires cuda-toolkit==13.0.3 (a packaging of CUDA 13.0 Update 2: nvidia-cuda-runtime 13.0.96)
# plus cuDNN 9.20 and NCCL 2.29 as wheels, so the base image carries the same CUDA release. The
# host needs only an NVIDIA driver for CUDA 13.0 (R580 or newer) and the container toolkit.
FROM nvidia/cuda:13.0.2-runtime-ubuntu24.04

# Python 3.11, the lock's Python, from the deadsnakes PPA (Ubuntu 24.04 ships 3.12). The key is
# fetched by fingerprint and checked against it before apt trusts it.
ARG DEADSNAKES_KEY=F23C5A6CF475977595C89F51BA6932366A755776
ARG PIP_VERSION=26.3
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Unpinned apt packages: Ubuntu and the PPA keep one current build per series; what is locked is the
# Python environment (requirements.lock), not the OS patch level.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL "https://keyserver.ubuntu.com/pks/lookup?op=get&search=0x${DEADSNAKES_KEY}" \
    | gpg --dearmor -o /usr/share/keyrings/deadsnakes.gpg \
 && gpg --show-keys --with-colons /usr/share/keyrings/deadsnakes.gpg | grep -q "^fpr:::::::::${DEADSNAKES_KEY}:" \
 && echo "deb [signed-by=/usr/share/keyrings/deadsnakes.gpg] https://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu noble main" \
    > /etc/apt/sources.list.d/deadsnakes.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv git make \
 && apt-get purge -y --auto-remove curl gnupg \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory '*'

# The same three steps as the Makefile's install: pinned pip, exactly requirements.lock, then the
# package without dependencies.
RUN python3.11 -m venv "$VIRTUAL_ENV" \
 && python -m pip install --upgrade "pip==${PIP_VERSION}"
WORKDIR /opt/growup
COPY requirements.lock ./
RUN python -m pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install --no-deps .

# A non-root user at UID/GID 1000, the usual host IDs (Ubuntu 24.04 images hold "ubuntu" there).
RUN if id ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi \
 && groupadd --gid 1000 growup \
 && useradd --create-home --uid 1000 --gid 1000 growup
USER 1000:1000
WORKDIR /work
ENTRYPOINT ["snakemake"]
CMD ["--cores", "all"]
