#include "weft/replication/channel_router.h"

#include <utility>

#include "weft/base/logging.h"
#include "weft/base/strings.h"

namespace weft::replication {
namespace {

// Waits for the channel's first frame, then forwards everything to the region's session.
class FirstFrameSession final : public ChannelSession {
 public:
  FirstFrameSession(const ChannelRouter& router, uint64_t peer, ChannelKind kind, Channel& channel)
      : router_(router), peer_(peer), kind_(kind), channel_(channel) {}

  void OnFrame(uint8_t type, std::string_view payload) override {
    if (target_ != nullptr) {
      target_->OnFrame(type, payload);
      return;
    }
    if (refused_) {
      return;
    }
    Status refusal;
    if (kind_ == ChannelKind::kLane) {
      StatusOr<ChannelOpen> open = DecodeChannelOpen(payload);
      if (type != static_cast<uint8_t>(FrameType::kChannelOpen) || !open.ok()) {
        refusal = absl::InvalidArgumentError("the first frame of a lane must be ChannelOpen");
      } else if (RegionReplicator* region = router_.Find(open->region)) {
        target_ = region->AcceptLane(peer_, *open, channel_, &refusal);
      } else {
        refusal = absl::NotFoundError(StrCat("no region '", open->region, "' here"));
      }
    } else {
      StatusOr<ImageRequest> request = DecodeImageRequest(payload);
      if (type != static_cast<uint8_t>(FrameType::kImageRequest) || !request.ok()) {
        refusal = absl::InvalidArgumentError("the first frame of an image must be ImageRequest");
      } else if (RegionReplicator* region = router_.Find(request->region)) {
        target_ = region->AcceptImage(peer_, *request, channel_, &refusal);
      } else {
        refusal = absl::NotFoundError(StrCat("no region '", request->region, "' here"));
      }
      if (target_ == nullptr) {
        channel_.Send(static_cast<uint8_t>(FrameType::kImageRefused),
                      std::string(refusal.message()));
      }
    }
    if (target_ == nullptr) {
      WEFT_LOG_WARN("refusing a {} channel from {:016x}: {}",
                    kind_ == ChannelKind::kLane ? "lane" : "image", peer_,
                    std::string(refusal.message()));
      refused_ = true;
      channel_.Close();
    }
  }

  bool Pull(OutFrame* frame, size_t max_bytes) override {
    return target_ != nullptr && target_->Pull(frame, max_bytes);
  }

  void OnClosed(const Status& reason) override {
    if (target_ != nullptr) {
      target_->OnClosed(reason);
    }
  }

 private:
  const ChannelRouter& router_;
  const uint64_t peer_;
  const ChannelKind kind_;
  Channel& channel_;
  std::shared_ptr<ChannelSession> target_;
  bool refused_ = false;
};

}  // namespace

void ChannelRouter::Add(RegionReplicator* replicator) {
  regions_[replicator->region()] = replicator;
}

RegionReplicator* ChannelRouter::Find(std::string_view region) const {
  auto it = regions_.find(region);
  return it == regions_.end() ? nullptr : it->second;
}

std::shared_ptr<ChannelSession> ChannelRouter::Accept(uint64_t peer, ChannelKind kind,
                                                      Channel& channel) {
  return std::make_shared<FirstFrameSession>(*this, peer, kind, channel);
}

}  // namespace weft::replication
