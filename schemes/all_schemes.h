// Registers every scheme folder's weight types, importers and passes (generated list, see
// cmake/QlcScheme.cmake). Idempotent.
#pragma once
namespace qlc::schemes {
void registerAllSchemes();
}
