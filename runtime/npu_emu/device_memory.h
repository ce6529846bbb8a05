// Device memory of the npu-emu device: a fixed capacity, the bytes reserved and their high-water
// mark. A DeviceAllocation is one reservation (RAII: released when destroyed); the bytes it stands
// for are held by the object that owns the allocation (a weight part, a tensor on the device),
// apart from any host buffer. Shared by concurrent runs, so every change is made under one mutex.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>

#include "llvm/Support/Error.h"

namespace qlc::npu_emu {

class DeviceMemory;

/// One reservation of device memory; move-only, released when destroyed or reset.
class DeviceAllocation {
public:
  DeviceAllocation() = default;
  DeviceAllocation(DeviceAllocation &&o) noexcept { *this = std::move(o); }
  DeviceAllocation &operator=(DeviceAllocation &&o) noexcept;
  DeviceAllocation(const DeviceAllocation &) = delete;
  DeviceAllocation &operator=(const DeviceAllocation &) = delete;
  ~DeviceAllocation() { reset(); }

  uint64_t bytes() const { return bytes_; }
  void reset();

private:
  friend class DeviceMemory;
  DeviceMemory *mem_ = nullptr;
  uint64_t bytes_ = 0;
};

class DeviceMemory {
public:
  explicit DeviceMemory(uint64_t capacity) : capacity_(capacity) {}

  /// Reserves `bytes` for `what` (e.g. "weight @w part 'weight'", "%y at f.qir:3:8"). Out of
  /// memory is an error naming `what`, the bytes requested, the bytes in use and the capacity.
  llvm::Expected<DeviceAllocation> allocate(uint64_t bytes, const std::string &what);

  uint64_t capacity() const { return capacity_; }
  uint64_t inUse() const;
  uint64_t peak() const;

private:
  friend class DeviceAllocation;
  void release(uint64_t bytes);

  const uint64_t capacity_;
  mutable std::mutex mu_;
  uint64_t inUse_ = 0, peak_ = 0;
};

} // namespace qlc::npu_emu
