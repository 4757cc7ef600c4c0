# The operator image: the Operator SDK Ansible runtime with our watches, playbooks and roles, plus the
# processor package, so one image serves both the operator and every processor pod. docs/image.md.
#
#   make image IMAGE=registry.example/you/dataflow-operator:0.1.0        (what CI and the env build)
#   podman build -t registry.example/you/dataflow-operator:0.1.0 .       (the same file, public bases)
#
# Only the two base images are build arguments. Pip may be configured for the build alone with two
# optional secrets (`make image` passes the host's): `pip-conf` (a pip.conf) and `pip-ca` (a CA file
# that pip.conf's `cert` names as /run/secrets/pip-ca). Neither ends up in the image.

# Debian 12: its python3 is 3.11, the processor's minimum. The env passes a local mmdebstrap rootfs.
ARG BASE=docker.io/library/debian:bookworm-slim
# Only /usr/local/bin/ansible-operator is taken from it; the env passes a local build of the same
# Go module (env/components/06-image-tools.sh).
ARG OPERATOR_BASE=quay.io/operator-framework/ansible-operator:v1.42.2

FROM ${OPERATOR_BASE} AS operator-runtime

FROM ${BASE}

# python3 + venv, tini for PID 1, CA certificates. A base that has them already (the env's) needs no
# package index.
# hadolint ignore=DL3008
RUN if ! dpkg -s python3 python3-venv tini ca-certificates >/dev/null 2>&1; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
           python3 python3-venv tini ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
 && useradd --uid 1001 --gid 0 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin dataflow

COPY --from=operator-runtime /usr/local/bin/ansible-operator /usr/local/bin/ansible-operator

# Everything Python lives in one venv on PATH, owned by root and read-only to the runtime user.
# The root filesystem is meant to be read-only: /tmp is the one writable path (an emptyDir in the
# chart, kustomize and the bundle) and holds HOME, Ansible's temp dirs and the runtime's
# /tmp/ansible-operator/runner input directories.
ENV VIRTUAL_ENV=/opt/dataflow/venv \
    PATH=/opt/dataflow/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    ANSIBLE_LOCAL_TEMP=/tmp/ansible-local \
    ANSIBLE_REMOTE_TEMP=/tmp/ansible-remote \
    ANSIBLE_COLLECTIONS_PATH=/opt/dataflow/collections \
    ANSIBLE_ROLES_PATH=/opt/dataflow/operator/roles \
    ANSIBLE_GATHERING=explicit \
    PYTHONUNBUFFERED=1
LABEL io.dataflow.writable-paths="/tmp"

# Every third-party package at the version of env/constraints.txt (the environment's lock), in a
# layer of its own so that a change of the processor's code does not reinstall them.
COPY env/constraints.txt /opt/dataflow/constraints.txt
COPY processor/pyproject.toml /tmp/build/processor/pyproject.toml
# Versions come from PIP_CONSTRAINT (the lock), not from this line.
# hadolint ignore=DL3013
RUN --mount=type=secret,id=pip-conf,target=/etc/pip.conf --mount=type=secret,id=pip-ca \
    export PIP_CONSTRAINT=/opt/dataflow/constraints.txt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
 && python3 -m venv /opt/dataflow/venv \
 && pip install pip setuptools wheel \
 && python -c 'import tomllib; p = tomllib.load(open("/tmp/build/processor/pyproject.toml", "rb"))["project"]; \
      print("\n".join(p["dependencies"] + p["optional-dependencies"]["connectors"] + p["optional-dependencies"]["kubernetes"]))' \
      >/tmp/build/processor-requirements.txt \
 && pip install -r /tmp/build/processor-requirements.txt \
      ansible-core ansible-runner ansible-runner-http requests-unixsocket \
 && rm -rf /tmp/build

# kubernetes.core and cloud.common, taken from the pinned `ansible` wheel (no Galaxy; see the script).
COPY requirements.yml scripts/install_collections.py /tmp/build/
RUN --mount=type=secret,id=pip-conf,target=/etc/pip.conf --mount=type=secret,id=pip-ca \
    PIP_CONSTRAINT=/opt/dataflow/constraints.txt pip download --no-cache-dir --no-deps -d /tmp/build ansible \
 && python /tmp/build/install_collections.py /tmp/build/ansible-*.whl /tmp/build/requirements.yml /opt/dataflow/collections \
 && rm -rf /tmp/build

# The processor itself: its dependencies are all present (pip check proves it), so no index is needed.
COPY processor/pyproject.toml processor/README.md /tmp/build/processor/
COPY processor/src/ /tmp/build/processor/src/
RUN pip install --no-cache-dir --no-deps --no-build-isolation --no-index /tmp/build/processor \
 && pip check \
 && rm -rf /tmp/build /tmp/*.log

WORKDIR /opt/dataflow/operator
COPY watches.yaml ./watches.yaml
COPY roles/ ./roles/
COPY playbooks/ ./playbooks/
COPY config/policy/ ./config/policy/
# Ansible would compile the roles' plugins on first use into a read-only tree; do it now.
RUN python -m compileall -q roles

USER 1001
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/ansible-operator", "run", "--watches-file=./watches.yaml"]
