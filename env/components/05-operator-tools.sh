# shellcheck shell=bash
# Operator tooling built from Go modules: ansible-operator (the Operator SDK Ansible runtime),
# operator-sdk (bundle generation and validation) and helm (built with the Kubernetes version
# ldflags so `helm template`/`lint` do not assume Kubernetes 1.20).
operator_tools_fetch() {
  go_build_tool ansible-operator "$ANSIBLE_OPERATOR_VERSION" \
    "github.com/operator-framework/ansible-operator-plugins@v$ANSIBLE_OPERATOR_VERSION" \
    github.com/operator-framework/ansible-operator-plugins/cmd/ansible-operator \
    "-s -w -X github.com/operator-framework/ansible-operator-plugins/internal/version.Version=v$ANSIBLE_OPERATOR_VERSION"
  go_build_tool operator-sdk "$OPERATOR_SDK_VERSION" \
    "github.com/operator-framework/operator-sdk@v$OPERATOR_SDK_VERSION" \
    github.com/operator-framework/operator-sdk/cmd/operator-sdk \
    "-s -w -X github.com/operator-framework/operator-sdk/internal/version.Version=v$OPERATOR_SDK_VERSION"
  local minor=${K8S_VERSION#*.}; minor=${minor%%.*}
  go_build_tool helm "$HELM_VERSION" "helm.sh/helm/v3@v$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
    "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
}

operator_tools_vars() {
  echo "export ANSIBLE_OPERATOR_BIN='$BIN_DIR/ansible-operator'"
}
