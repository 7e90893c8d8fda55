// Package reconcile computes and carries out what it takes to bring the world
// to a topology file.
//
// Observe gathers the whole world again on every pass (containers by label,
// pacsd's files in each PGDATA, roles, slots, settings, replication state)
// through the interfaces this package declares: Runtime (a container engine)
// and Database (a PostgreSQL server). Plan is a pure function of the desired
// spec and the observed state: it has no side effects and returns ordered
// actions, each with a reason and a class (reload, restart, recreate, rebuild).
// Apply carries the actions out in fixed phases and stops at the first failure
// of a step that later steps depend on.
//
// Ownership is by label: objects without pacsd's labels are never changed; a
// name clash is reported as a problem, never resolved by force.
//
// Each decision is made in one pure function, and the executor is the only
// code that acts. The files, by what they decide or do:
//
//   - interfaces.go: Runtime, Database and ClusterStore, the seams to the
//     adapters; memstore.go: MemoryStore, a ClusterStore in memory.
//   - observe.go, observed.go, control.go: what a pass sees.
//   - acting.go: which node is the acting primary (CurrentState: the record,
//     or one rebuilt from the nodes), and recording it.
//   - plan.go: Plan and its phases; plan_data.go: data locations that must
//     not change; plan_container.go: what a node's container should be;
//     plan_files.go: pacsd's files and settings, reload or restart;
//     plan_roles.go: roles and slots; plan_standby.go: standbys, base
//     backups, repointing and rejoin (pg_rewind); plan_switchover.go: a
//     planned switchover and promoting a recorded primary.
//   - apply.go: Apply's rounds (observe, plan, act under the cluster's
//     lock); executor.go: the one executor of every action.
//   - switchover.go: SwitchoverTo and the executor's switchover, record and
//     promote; fence.go: the one fence, shared by switchover and failover.
//   - failover_choice.go: ChooseFailoverTarget, whom to promote or why none;
//     watch.go: PrimaryWatch, when the supervisor fails over; failover.go:
//     Failover and ManualFailover, which carry the decision out.
//   - maintenance.go: the operator's maintenance commands, decided
//     (RestartOrder, RestartCheck, SwitchoverTarget, ReinitCheck, and
//     RequestHost, which host's pacsd carries a command out with pacsd on
//     every host); maintain.go: RestartNode, RestartAll and Reinit, which
//     carry them out; request.go: a command kept in etcd for a host's pacsd.
//   - oneoff.go: one-off jobs (base backup, rewind, moving data aside);
//     roles.go: the superuser's reset; progress.go: idle timeouts of long
//     work.
package reconcile
