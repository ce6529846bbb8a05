#include "runtime/npu_emu/device_memory.h"

#include <utility>

namespace qlc::npu_emu {

DeviceAllocation &DeviceAllocation::operator=(DeviceAllocation &&o) noexcept {
  if (this != &o) {
    reset();
    mem_ = std::exchange(o.mem_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

void DeviceAllocation::reset() {
  if (mem_)
    mem_->release(bytes_);
  mem_ = nullptr;
  bytes_ = 0;
}

llvm::Expected<DeviceAllocation> DeviceMemory::allocate(uint64_t bytes, const std::string &what) {
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes > capacity_ - inUse_)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "npu-emu: out of device memory: " + what + " needs " +
                                       std::to_string(bytes) + " bytes, " + std::to_string(inUse_) +
                                       " of " + std::to_string(capacity_) +
                                       " bytes are in use (raise the capacity with --npu-mem)");
  inUse_ += bytes;
  if (inUse_ > peak_)
    peak_ = inUse_;
  DeviceAllocation a;
  a.mem_ = this;
  a.bytes_ = bytes;
  return a;
}

uint64_t DeviceMemory::inUse() const {
  std::lock_guard<std::mutex> lock(mu_);
  return inUse_;
}

uint64_t DeviceMemory::peak() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

void DeviceMemory::release(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  inUse_ -= bytes;
}

} // namespace qlc::npu_emu
