# ERROR: No Cluster Declared
