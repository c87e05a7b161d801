// placeholder: helper writes this
