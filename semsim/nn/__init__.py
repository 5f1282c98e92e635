"""Neural-network building blocks shared by semsim's codecs."""
