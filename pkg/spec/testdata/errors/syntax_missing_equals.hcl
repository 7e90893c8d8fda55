cluster "pacs" {
  image "dcm4che/postgres-dcm4chee:17.4-34" # ERROR: Invalid Block Definition
}
