//! Named model definitions as layer lists, with the parameter count and FLOPs per sample derived
//! from the layers (never typed in by hand).
//!
//! FLOPs count a multiply-add as 2. A training step (forward + backward) is taken as 3x the
//! forward FLOPs, the usual estimate (backward computes gradients with respect to both the
//! activations and the weights, each about one forward's work).

use serde::Serialize;

/// Bytes per parameter: single-precision floats, as the seed paper's Torch code used.
pub const BYTES_PER_PARAM: u64 = 4;

/// Training FLOPs per sample as a multiple of the forward FLOPs.
pub const TRAIN_FLOPS_PER_FORWARD: f64 = 3.0;

/// Shape of one sample's activations between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Shape {
    /// Channels x height x width.
    Image { c: usize, h: usize, w: usize },
    /// A flat vector.
    Vector(usize),
    /// A bag of token ids from a vocabulary, `tokens` per sample on average.
    Tokens { vocabulary: usize, tokens: usize },
}

impl Shape {
    pub fn len(self) -> usize {
        match self {
            Shape::Image { c, h, w } => c * h * w,
            Shape::Vector(n) => n,
            Shape::Tokens { tokens, .. } => tokens,
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// One layer. Closed set: the numerics implement each kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Layer {
    /// Stride-1 2-D convolution with zero padding.
    Conv2d {
        out_channels: usize,
        kernel: usize,
        padding: usize,
    },
    Relu,
    /// 2x2 max-pooling, stride 2 (odd sizes round down).
    MaxPool2,
    Dropout {
        p: f64,
    },
    /// Fully connected; flattens its input.
    Dense {
        outputs: usize,
    },
    /// Mean of the embeddings of a sample's tokens.
    EmbeddingBag {
        dim: usize,
    },
}

/// A model: input shape, layers, and classes (the last layer's outputs), with softmax
/// cross-entropy on top.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelDef {
    pub name: &'static str,
    pub description: &'static str,
    pub input: Shape,
    pub layers: Vec<Layer>,
}

/// Per-layer derived figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerStats {
    pub output: Shape,
    pub params: u64,
    pub forward_flops: f64,
}

impl ModelDef {
    /// Walks the layers, deriving each one's output shape, parameters and forward FLOPs.
    /// Returns an error naming the layer if a layer does not fit its input.
    pub fn layer_stats(&self) -> Result<Vec<LayerStats>, String> {
        let mut shape = self.input;
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let bad = |what: &str| Err(format!("model `{}` layer {i}: {what}", self.name));
            let (output, params, flops) = match (*layer).clone() {
                Layer::Conv2d {
                    out_channels,
                    kernel,
                    padding,
                } => {
                    let Shape::Image { c, h, w } = shape else {
                        return bad("conv2d needs an image input");
                    };
                    if h + 2 * padding < kernel || w + 2 * padding < kernel {
                        return bad("kernel larger than the padded input");
                    }
                    let (oh, ow) = (h + 2 * padding - kernel + 1, w + 2 * padding - kernel + 1);
                    let fan_in = c * kernel * kernel;
                    let params = (out_channels * fan_in + out_channels) as u64;
                    let flops = 2.0 * (fan_in * out_channels * oh * ow) as f64;
                    (
                        Shape::Image {
                            c: out_channels,
                            h: oh,
                            w: ow,
                        },
                        params,
                        flops,
                    )
                }
                Layer::Relu => (shape, 0, shape.len() as f64),
                Layer::Dropout { .. } => (shape, 0, shape.len() as f64),
                Layer::MaxPool2 => {
                    let Shape::Image { c, h, w } = shape else {
                        return bad("max-pool needs an image input");
                    };
                    if h < 2 || w < 2 {
                        return bad("max-pool input smaller than 2x2");
                    }
                    let out = Shape::Image {
                        c,
                        h: h / 2,
                        w: w / 2,
                    };
                    (out, 0, 3.0 * out.len() as f64)
                }
                Layer::Dense { outputs } => {
                    let inputs = match shape {
                        Shape::Tokens { .. } => return bad("dense needs a numeric input"),
                        s => s.len(),
                    };
                    (
                        Shape::Vector(outputs),
                        (inputs * outputs + outputs) as u64,
                        2.0 * (inputs * outputs) as f64,
                    )
                }
                Layer::EmbeddingBag { dim } => {
                    let Shape::Tokens { vocabulary, tokens } = shape else {
                        return bad("embedding-bag needs a token input");
                    };
                    (
                        Shape::Vector(dim),
                        (vocabulary * dim) as u64,
                        (tokens * dim) as f64,
                    )
                }
            };
            out.push(LayerStats {
                output,
                params,
                forward_flops: flops,
            });
            shape = output;
        }
        Ok(out)
    }

    /// Number of trainable parameters.
    pub fn params(&self) -> u64 {
        self.layer_stats()
            .map(|s| s.iter().map(|l| l.params).sum())
            .unwrap_or(0)
    }

    pub fn param_bytes(&self) -> u64 {
        self.params() * BYTES_PER_PARAM
    }

    /// Forward FLOPs for one sample.
    pub fn forward_flops(&self) -> f64 {
        self.layer_stats()
            .map(|s| s.iter().map(|l| l.forward_flops).sum())
            .unwrap_or(0.0)
    }

    /// Forward + backward FLOPs for one sample.
    pub fn train_flops_per_sample(&self) -> f64 {
        TRAIN_FLOPS_PER_FORWARD * self.forward_flops()
    }

    /// Number of classes the model predicts.
    pub fn classes(&self) -> usize {
        self.layer_stats()
            .ok()
            .and_then(|s| s.last().map(|l| l.output.len()))
            .unwrap_or(0)
    }
}

/// The noisy quadratic model's definition (see `numerics::quadratic`), as written under
/// `[workload.quadratic]`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuadraticDef {
    /// Number of coordinates d.
    pub dim: usize,
    /// Largest curvature: the gradient's Lipschitz constant L.
    pub h_max: f64,
    /// Smallest curvature; the others are spaced geometrically in between.
    pub h_min: f64,
    /// Per-sample gradient noise sigma^2 = E||G - grad f||^2 (a mini-batch of M has sigma^2/M);
    /// zero gives exact gradients.
    pub noise_variance: f64,
    /// Starting value of every coordinate.
    pub x0: f64,
}

impl Default for QuadraticDef {
    fn default() -> Self {
        Self {
            dim: 1000,
            h_max: 1.0,
            h_min: 0.01,
            noise_variance: 1.0,
            x0: 1.0,
        }
    }
}

impl QuadraticDef {
    /// h_i = h_max (h_min / h_max)^(i / (d - 1)).
    pub fn curvatures(&self) -> Vec<f64> {
        let d = self.dim;
        (0..d)
            .map(|i| {
                let t = if d > 1 {
                    i as f64 / (d - 1) as f64
                } else {
                    0.0
                };
                self.h_max * (self.h_min / self.h_max).powf(t)
            })
            .collect()
    }

    /// Problems as (key under `workload.quadratic`, message).
    pub fn check(&self) -> Vec<(String, String)> {
        let mut p = vec![];
        if self.dim == 0 {
            p.push(("dim".into(), "must be at least 1".into()));
        }
        if !(self.h_max.is_finite() && self.h_max > 0.0) {
            p.push((
                "h_max".into(),
                format!("must be a positive number, got {}", self.h_max),
            ));
        }
        if !(self.h_min.is_finite() && self.h_min > 0.0 && self.h_min <= self.h_max) {
            p.push((
                "h_min".into(),
                format!("must be positive and at most h_max, got {}", self.h_min),
            ));
        }
        if !(self.noise_variance.is_finite() && self.noise_variance >= 0.0) {
            p.push((
                "noise_variance".into(),
                format!("must be a non-negative number, got {}", self.noise_variance),
            ));
        }
        if !self.x0.is_finite() {
            p.push(("x0".into(), "must be a finite number".into()));
        }
        p
    }
}

/// What a scenario trains: a layered network or the noisy quadratic model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ModelSpec {
    Layers(ModelDef),
    Quadratic(QuadraticDef),
}

impl ModelSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Layers(m) => m.name,
            ModelSpec::Quadratic(_) => "quadratic",
        }
    }

    /// Number of trainable parameters.
    pub fn params(&self) -> u64 {
        match self {
            ModelSpec::Layers(m) => m.params(),
            ModelSpec::Quadratic(q) => q.dim as u64,
        }
    }

    pub fn param_bytes(&self) -> u64 {
        self.params() * BYTES_PER_PARAM
    }

    /// Training FLOPs per sample for the timing model. The quadratic's gradient is one
    /// multiply-add and one noise draw per coordinate: counted as 4 d.
    pub fn train_flops_per_sample(&self) -> f64 {
        match self {
            ModelSpec::Layers(m) => m.train_flops_per_sample(),
            ModelSpec::Quadratic(q) => 4.0 * q.dim as f64,
        }
    }

    /// The layered network, if this is one.
    pub fn layers(&self) -> Option<&ModelDef> {
        match self {
            ModelSpec::Layers(m) => Some(m),
            ModelSpec::Quadratic(_) => None,
        }
    }
}

/// Names of the built-in models, for messages.
pub const NAMES: &[&str] = &["cifar10-cnn", "nlc-text", "mlp", "softmax", "quadratic"];

/// A built-in model for data of the given input shape and number of classes, or None if the
/// name is unknown. Whether the layers fit the input is checked by [`ModelDef::layer_stats`].
pub fn builtin(name: &str, input: Shape, classes: usize) -> Option<ModelDef> {
    let (name, description, layers): (&'static str, &'static str, Vec<Layer>) = match name {
        "cifar10-cnn" => (
            "cifar10-cnn",
            "seed paper's CIFAR-10 ConvNet: 4 x (conv, ReLU, max-pool, dropout) + FC",
            cnn_layers(classes),
        ),
        "nlc-text" => (
            "nlc-text",
            "embedding-bag text classifier (256-wide embedding, 128 hidden)",
            [vec![Layer::EmbeddingBag { dim: 256 }], hidden_128(classes)].concat(),
        ),
        "mlp" => (
            "mlp",
            "multi-layer perceptron: 128 ReLU hidden units",
            hidden_128(classes),
        ),
        "softmax" => (
            "softmax",
            "softmax regression (one dense layer)",
            vec![Layer::Dense { outputs: classes }],
        ),
        _ => return None,
    };
    Some(ModelDef {
        name,
        description,
        input,
        layers,
    })
}

/// 128 ReLU hidden units, then the output layer: the head of the MLP and the text model.
fn hidden_128(classes: usize) -> Vec<Layer> {
    vec![
        Layer::Dense { outputs: 128 },
        Layer::Relu,
        Layer::Dense { outputs: classes },
    ]
}

fn cnn_layers(classes: usize) -> Vec<Layer> {
    let block = |out_channels, kernel, padding| {
        [
            Layer::Conv2d {
                out_channels,
                kernel,
                padding,
            },
            Layer::Relu,
            Layer::MaxPool2,
            Layer::Dropout { p: 0.5 },
        ]
    };
    let mut layers = vec![];
    layers.extend(block(64, 5, 2));
    layers.extend(block(128, 3, 1));
    layers.extend(block(256, 3, 1));
    layers.extend(block(128, 2, 0));
    layers.push(Layer::Dense { outputs: classes });
    layers
}

/// The seed paper's CIFAR-10 network (REFERENCE.md, from the authors' companion paper):
/// four conv blocks (conv, ReLU, 2x2 max-pool, dropout 0.5), then fully connected 128 -> 10.
/// 506,378 parameters.
pub fn cifar10_cnn() -> ModelDef {
    let input = Shape::Image { c: 3, h: 32, w: 32 };
    builtin("cifar10-cnn", input, 10).unwrap_or(ModelDef {
        name: "cifar10-cnn",
        description: "",
        input,
        layers: cnn_layers(10),
    })
}

/// Stand-in for the seed paper's unpublished NLC-F model: a text classifier whose large
/// embedding table (100,000 words x 256) dominates its ~25.6 M parameters, so that on the
/// paper's machine it is communication-bound where the CNN is compute-bound. 20 classes,
/// 40 tokens per document.
pub fn nlc_text() -> ModelDef {
    let input = Shape::Tokens {
        vocabulary: 100_000,
        tokens: 40,
    };
    builtin("nlc-text", input, 20).unwrap_or(ModelDef {
        name: "nlc-text",
        description: "",
        input,
        layers: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cifar10_cnn_matches_the_paper() {
        let m = cifar10_cnn();
        assert_eq!(m.params(), 506_378);
        let s = m.layer_stats().unwrap();
        // Spatial sizes 32 -> 16 -> 8 -> 4 -> 3 -> 1 (REFERENCE.md).
        assert_eq!(
            s[2].output,
            Shape::Image {
                c: 64,
                h: 16,
                w: 16
            }
        );
        assert_eq!(s[14].output, Shape::Image { c: 128, h: 1, w: 1 });
        // conv1 9.8 M, conv2 37.7 M, conv3 37.7 M, conv4 2.4 M forward FLOPs.
        let conv: Vec<f64> = [0, 4, 8, 12].iter().map(|&i| s[i].forward_flops).collect();
        assert_eq!(
            conv,
            vec![9_830_400.0, 37_748_736.0, 37_748_736.0, 2_359_296.0]
        );
        let total = m.forward_flops();
        assert!((87e6..90e6).contains(&total), "{total}");
        assert_eq!(m.classes(), 10);
    }

    #[test]
    fn nlc_text_is_embedding_dominated() {
        let m = nlc_text();
        assert_eq!(m.params(), 100_000 * 256 + 256 * 128 + 128 + 128 * 20 + 20);
        assert!(m.train_flops_per_sample() < 1e6);
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let m = ModelDef {
            name: "bad",
            description: "",
            input: Shape::Vector(4),
            layers: vec![Layer::MaxPool2],
        };
        assert!(m.layer_stats().unwrap_err().contains("layer 0"));
    }
}
