module seaway.dev/testbin/kserve

go 1.26.0

// Only KServe's CRDs (config/crd/full) are taken from this module; nothing is
// compiled. build.sh reads the pinned version from here.
require github.com/kserve/kserve v0.20.0
