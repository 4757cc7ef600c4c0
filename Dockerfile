# The operator image: the Operator SDK Ansible runtime with our watches, playbooks and roles, plus the
# processor package, so one image serves both the operator and every processor pod.
# Build: docker build --build-arg IMAGE=ghcr.io/dataflow-operator/dataflow-operator:0.1.0 -t $IMAGE .
FROM quay.io/operator-framework/ansible-operator:v1.42.2

ARG IMAGE=ghcr.io/dataflow-operator/dataflow-operator:0.1.0
# Processor pods run this same image unless the chart or the DataFlow says otherwise.
ENV PROCESSOR_IMAGE=${IMAGE} \
    ANSIBLE_GATHERING=explicit

COPY requirements.yml ${HOME}/requirements.yml
RUN ansible-galaxy collection install -r "${HOME}/requirements.yml" \
 && chmod -R ug+rwx "${HOME}/.ansible"

COPY --chown=1001:0 processor/ /tmp/processor/
RUN python3 -m pip install --no-cache-dir /tmp/processor \
 && rm -rf /tmp/processor

COPY watches.yaml ${HOME}/watches.yaml
COPY roles/ ${HOME}/roles/
COPY playbooks/ ${HOME}/playbooks/
COPY config/policy/ ${HOME}/config/policy/
