cluster { # ERROR: Missing Name for Cluster
}
