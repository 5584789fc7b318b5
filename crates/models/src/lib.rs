//! ResNet models with torchvision's parameter names, and their weights as safetensors.
//!
//! [`ResNet`] builds ResNet-18/34/50 on a `tch` variable store so that every parameter and
//! batch-norm buffer carries the name torchvision's state dict gives it (`layer2.0.conv1.weight`,
//! `layer3.1.downsample.1.running_var`, ...). That makes torchvision's ImageNet weights, the
//! reference's checkpoints and ours interchangeable through [`load_weights`] and
//! [`save_weights`]. [`ModelInfo`] is the `model` artefact's metadata (architecture, stem,
//! classes, normalisation, evaluation transform) and [`load_model_artefact`] turns such an
//! artefact back into a ready model in eval mode.

mod error;
mod images;
mod info;
mod resnet;
mod weights;

pub use error::ModelError;
pub use images::ImageSource;
pub use info::{load_model_artefact, normalise, ModelInfo, IMAGENET_MEAN, IMAGENET_STD};
pub use resnet::{Arch, BasicBlock, Block, Bottleneck, Downsample, ResNet, ResNetConfig, Stem};
pub use weights::{load_weights, save_weights, state_dict, LoadOptions, LoadReport};
