"""The clean stage: normalize text and drop refusals, truncations, repetition and length outliers."""
