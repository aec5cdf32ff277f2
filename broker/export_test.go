package broker

// Hooks for the external tests (package broker_test).

// MetadataReserveFile is the name of the reserve kept next to the
// metadata file.
const MetadataReserveFile = metadataReserveFile
