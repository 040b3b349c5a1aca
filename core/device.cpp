#include "core/device.h"

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/parse.h"

namespace gb {

Device Device::cuda(int index) {
    GB_CHECK(cuda::built(),
             "CUDA device requested, but this glassbox was built without CUDA "
             "(configure with -DGB_CUDA=ON on a machine with the CUDA toolkit)");
    const int n = cuda::device_count();
    GB_CHECK(n > 0, "CUDA device requested, but no GPU is usable here: ", cuda::unavailable_reason());
    GB_CHECK(index >= 0 && index < n, "CUDA device ", index, " requested, but only ", n,
             " GPU(s) are present (valid: 0..", n - 1, ")");
    return Device(DeviceType::CUDA, index);
}

Device Device::parse(const std::string& text) {
    if (text == "cpu") return cpu();
    if (text == "cuda") return cuda(0);
    if (text.rfind("cuda:", 0) == 0) {
        const std::string idx = text.substr(5);
        GB_CHECK(!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos,
                 "bad device '", text, "': expected cpu, cuda or cuda:N");
        return cuda(static_cast<int>(parse_int(idx, 0, 65535, "device '" + text + "': the GPU index")));
    }
    GB_FAIL("bad device '", text, "': expected cpu, cuda or cuda:N");
}

std::string Device::str() const {
    return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index_);
}

}  // namespace gb
