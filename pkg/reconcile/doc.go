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
package reconcile
