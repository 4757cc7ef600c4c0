# shellcheck shell=bash
# S3-compatible object store: versitygw (Apache-2.0, real SigV4 gateway) in posix mode over
# $DATA_DIR/s3, each bucket a directory. Built from its Go module; root credentials are fixed test
# values; the bucket $S3_BUCKET is created at start with a signed PUT.
: "${S3_ACCESS_KEY:=dataflow}" "${S3_SECRET_KEY:=dataflow-secret-key}" "${S3_REGION:=us-east-1}" "${S3_BUCKET:=warehouse}"
# shellcheck disable=SC2034  # read by envctl
s3_timeout=60

s3_fetch() {
  [[ -x $BIN_DIR/versitygw-$VERSITYGW_VERSION ]] && { ln -sfn "versitygw-$VERSITYGW_VERSION" "$BIN_DIR/versitygw"; return 0; }
  local blog="$BUILD_DIR/versitygw-$VERSITYGW_VERSION.log"
  # go's download chatter goes to a build log; shown only on failure
  (go_build_tool versitygw "$VERSITYGW_VERSION" "github.com/versity/versitygw@v$VERSITYGW_VERSION" \
    github.com/versity/versitygw/cmd/versitygw "-s -w") >"$blog" 2>&1 \
    || { tail -n 30 "$blog" >&2; die "building versitygw $VERSITYGW_VERSION failed (log: $blog)"; }
}

# s3_curl ARGS...: a SigV4-signed request with the root credentials.
s3_curl() {
  curl -sS --max-time 5 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

s3_start() {
  mkdir -p "$DATA_DIR/s3/root" "$DATA_DIR/s3/iam" "$DATA_DIR/s3/versions"
  ROOT_ACCESS_KEY=$S3_ACCESS_KEY ROOT_SECRET_KEY=$S3_SECRET_KEY \
    start_bg s3 "$BIN_DIR/versitygw-$VERSITYGW_VERSION" --port "127.0.0.1:$S3_PORT" --region "$S3_REGION" \
      --iam-dir "$DATA_DIR/s3/iam" --quiet posix --versioning-dir "$DATA_DIR/s3/versions" "$DATA_DIR/s3/root"
}

# Ready = a signed ListBuckets answers 200 and the bucket exists (created here if missing).
s3_ready() {
  local url="http://127.0.0.1:$S3_PORT"
  s3_curl -f -o /dev/null "$url/" || return 1
  s3_curl -f -o /dev/null -I "$url/$S3_BUCKET" && return 0
  s3_curl -f -o /dev/null -X PUT "$url/$S3_BUCKET"
}

s3_vars() {
  cat <<VARS
export DATAFLOW_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'
export DATAFLOW_S3_ACCESS_KEY='$S3_ACCESS_KEY'
export DATAFLOW_S3_SECRET_KEY='$S3_SECRET_KEY'
export DATAFLOW_S3_REGION='$S3_REGION'
export DATAFLOW_S3_BUCKET='$S3_BUCKET'
VARS
}
