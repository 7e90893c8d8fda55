// Package docker implements reconcile.Runtime over the Docker Engine API.
//
// Ownership is by label: a container or network belongs to a cluster when it
// carries io.pacsd.cluster (and, for containers, io.pacsd.node) with the
// cluster's (and node's) name. This package reports ownership; it never
// decides to change an object it does not own — that is reconcile's job.
//
// Every engine call is bounded by its own timeout (see Timeouts), so one
// stuck call cannot stall a reconcile pass. Absent objects are reported as nil
// results with nil errors; other errors are wrapped "while X: %w" and name the
// container, network, volume or image concerned.
//
// Files are placed through the archive endpoints of the API (copy to and from
// a container), so they work alike for named volumes, host directories and
// remote engines. They are owned by the postgres user of the container's
// image, whose uid and gid are read once per image in a short-lived probe
// container (`id -u postgres; id -g postgres`). On a running container a file
// is written under a temporary name beside its target and renamed over it
// (mv -f as postgres), so readers never see half a file; a stopped container
// cannot run a command, so there the file is copied straight to its target.
//
// DataInspect looks into a node's data location with a probe container that
// mounts it read-only (never creating a missing volume or host directory, and
// never copying image content into an empty volume): it reads PG_VERSION of
// reconcile.PGDATA and looks for reconcile.BuildingMarker, which pacsd
// creates before building a data directory (a base backup) and removes when
// the build is complete; its presence means the data is partial and must
// never be started.
//
// One-off containers (RunOnce: base backups, rewinds, data moved aside) are
// removed when they end, also when the caller gives up. Those a killed pacsd
// left behind are found by their labels and killed, confirmed stopped and
// removed by RemoveOneOffs, before the next one touches the node's data.
//
// Engines from Docker 20.10 (API 1.41) up are supported: the client negotiates
// the API version. Stopping with a signal other than the container's own stop
// signal needs API 1.42, so ContainerCreate sets SIGINT as the container's
// stop signal and ContainerStop works on both.
package docker
