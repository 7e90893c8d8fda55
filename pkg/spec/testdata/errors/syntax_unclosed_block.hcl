cluster "pacs" { # ERROR: Unclosed Configuration Block
  image = "x"
