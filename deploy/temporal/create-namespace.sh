#!/bin/sh
# Registers tend's Temporal namespace once the server answers, with the temporal CLI of the
# admin-tools image. Safe to repeat: a namespace that exists is left as it is (its retention
# included; change that with `temporal operator namespace update`).
set -eu
: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
: "${TEMPORAL_NAMESPACE:?TEMPORAL_NAMESPACE is required}"
retention=${TEMPORAL_NAMESPACE_RETENTION:-7d}

attempt=1
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
	if [ "$attempt" -ge 60 ]; then
		echo "Temporal at $TEMPORAL_ADDRESS is not healthy after $attempt attempts" >&2
		exit 1
	fi
	attempt=$((attempt + 1))
	sleep 2
done

if temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
	echo "namespace $TEMPORAL_NAMESPACE exists"
	exit 0
fi
temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention "$retention" \
	--description "tend: one workflow per lead" --address "$TEMPORAL_ADDRESS"
echo "namespace $TEMPORAL_NAMESPACE created (retention $retention)"
