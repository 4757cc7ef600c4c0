# shellcheck shell=bash
# Operator tooling built from Go modules, each in its own wrapper module (go_build_tool):
#   ansible-operator  the Operator SDK Ansible runtime (operator-framework/ansible-operator-plugins)
#   operator-sdk      scaffolding, bundle generation and `bundle validate`
#   helm              built with the Kubernetes version ldflags, so `helm template`/`lint` assume the
#                     pinned Kubernetes minor instead of 1.20
# The version ldflags are those of the upstream Makefiles (KubernetesVersion = their K8S_VERSION).
# The Ansible side (ansible-runner, the runner HTTP event plugin, kubernetes.core, molecule) is in
# env/requirements-tools.txt, installed by the venv component.
operator_tools_fetch() {
  local aop=github.com/operator-framework/ansible-operator-plugins sdk=github.com/operator-framework/operator-sdk
  go_build_tool ansible-operator "$ANSIBLE_OPERATOR_VERSION" "$aop@v$ANSIBLE_OPERATOR_VERSION" "$aop/cmd/ansible-operator" \
    "-s -w -X $aop/internal/version.Version=v$ANSIBLE_OPERATOR_VERSION -X $aop/internal/version.GitVersion=v$ANSIBLE_OPERATOR_VERSION -X $aop/internal/version.KubernetesVersion=v1.32.0 -X $aop/internal/version.ImageVersion=v$ANSIBLE_OPERATOR_VERSION"
  # containers/image would link gpgme through cgo; its pure-Go openpgp build tag avoids that.
  GOFLAGS="$GOFLAGS -tags=containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper" \
    CGO_ENABLED=0 go_build_tool operator-sdk "$OPERATOR_SDK_VERSION" "$sdk@v$OPERATOR_SDK_VERSION" "$sdk/cmd/operator-sdk" \
    "-s -w -X $sdk/internal/version.Version=v$OPERATOR_SDK_VERSION -X $sdk/internal/version.GitVersion=v$OPERATOR_SDK_VERSION -X $sdk/internal/version.KubernetesVersion=v1.33.1 -X $sdk/internal/version.ImageVersion=v$OPERATOR_SDK_VERSION"
  local minor=${K8S_VERSION#*.} h=helm.sh/helm/v3
  minor=${minor%%.*}
  go_build_tool helm "$HELM_VERSION" "$h@v$HELM_VERSION" "$h/cmd/helm" \
    "-s -w -X $h/internal/version.version=v$HELM_VERSION -X $h/pkg/chartutil.k8sVersionMajor=1 -X $h/pkg/chartutil.k8sVersionMinor=$minor -X $h/pkg/lint/rules.k8sVersionMajor=1 -X $h/pkg/lint/rules.k8sVersionMinor=$minor"
}

operator_tools_vars() {
  echo "export ANSIBLE_OPERATOR_BIN='$BIN_DIR/ansible-operator-$ANSIBLE_OPERATOR_VERSION'"
}
